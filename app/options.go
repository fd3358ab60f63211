package app

import "github.com/stateloop/stateloop/processor"

// Option configures how [Main], [Command] and [Run] run an application,
// beyond what the command-line flags set.
type Option interface{ apply(*options) }

type options struct {
	processor []processor.Option
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithProcessorOptions passes opts to processor.New for the settings that
// have no flag: retries and their backoff (processor.WithRetries), the
// commit count, the idempotency window, the transaction and session
// timeouts, the replication factor of created topics, and so on.
//
//	func main() {
//		app.Main(shop.Build, app.WithProcessorOptions(processor.WithRetries(5, 100*time.Millisecond)))
//	}
//
// They are applied after the options the flags make, so they win over
// them; set what a flag sets (--data-dir, --instance-id, --threads,
// --commit-interval, --log-level) with the flag, so that --help and the
// progress lines tell the truth. processor.New reports invalid options,
// all at once, as an error of Run.
func WithProcessorOptions(opts ...processor.Option) Option {
	return optionFunc(func(o *options) { o.processor = append(o.processor, opts...) })
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}
