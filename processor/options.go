package processor

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
)

// Option configures a Processor. Options are applied over the defaults in
// order; New validates the result once.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	dataDir        string
	lockedDataDir  *DataDir
	instanceID     string
	commitInterval time.Duration
	commitCount    int
	logger         *slog.Logger
	createTopics   bool
	replication    int16
	minISR         int
	// topicRepl is what created topics get, resolved at start-up
	topicRepl      topicReplication
	txnTimeout     time.Duration
	sessionTimeout time.Duration
	retries        int
	retryBackoff   time.Duration
	faults         *Faults
	remote         func(functions.TypeName) remote.Invoker
	now            func() time.Time
	metrics        Metrics
	tracerProvider trace.TracerProvider
	// lagInterval is how often the consumer lag gauge is refreshed
	lagInterval time.Duration
	// threads is the number of stream threads
	threads int
	// standbys is the number of standby copies of each loop partition
	standbys int

	idempotencyWindow time.Duration
}

// DefaultTransactionTimeout is the transaction timeout of a Processor
// without WithTransactionTimeout.
const DefaultTransactionTimeout = 15 * time.Second

func defaultConfig() config {
	return config{
		commitInterval: 100 * time.Millisecond,
		commitCount:    5000,
		logger:         slog.New(slog.DiscardHandler),
		createTopics:   true,
		replication:    ReplicationAuto,
		minISR:         ReplicationAuto,
		topicRepl:      topicReplication{factor: ReplicationBrokerDefault},
		txnTimeout:     DefaultTransactionTimeout,
		sessionTimeout: 10 * time.Second,
		retries:        3,
		retryBackoff:   20 * time.Millisecond,
		now:            time.Now,
		lagInterval:    2 * time.Second,
		threads:        1,

		idempotencyWindow: DefaultIdempotencyWindow,
	}
}

func (c *config) validate() error {
	var errs []error
	if c.commitInterval <= 0 {
		errs = append(errs, fmt.Errorf("processor: commit interval %v: must be positive", c.commitInterval))
	}
	if c.commitCount <= 0 {
		errs = append(errs, fmt.Errorf("processor: commit count %d: must be positive", c.commitCount))
	}
	if c.txnTimeout < time.Second {
		errs = append(errs, fmt.Errorf("processor: transaction timeout %v: must be at least 1s", c.txnTimeout))
	}
	if c.sessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("processor: session timeout %v: must be at least 1s", c.sessionTimeout))
	}
	if c.retries < 0 {
		errs = append(errs, fmt.Errorf("processor: retries %d: must not be negative", c.retries))
	}
	if c.threads < 1 || c.threads > maxThreads {
		errs = append(errs, fmt.Errorf("processor: threads %d: must be between 1 and %d", c.threads, maxThreads))
	}
	if c.standbys < 0 || c.standbys > maxStandbys {
		errs = append(errs, fmt.Errorf("processor: standbys %d: must be between 0 and %d", c.standbys, maxStandbys))
	}
	if c.logger == nil {
		errs = append(errs, errors.New("processor: nil logger"))
	}
	if err := c.checkDataDir(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateReplication()...)
	return errors.Join(errs...)
}

// WithDataDir keeps the local state store and the instance id under dir,
// so a restarted instance catches up from where it was instead of
// rebuilding every partition from the changelog. Run locks dir while it
// runs (see [DataDir]): a second instance on it fails at once. The default
// keeps the store in memory.
func WithDataDir(dir string) Option { return optionFunc(func(c *config) { c.dataDir = dir }) }

// WithInstanceID sets the stable identity of this instance, used in its
// Kafka transactional id. A restarted instance must keep its id, so that its
// new producer fences the old one. The default is read from (or created in)
// the data directory, and random without one.
func WithInstanceID(id string) Option { return optionFunc(func(c *config) { c.instanceID = id }) }

// WithCommitInterval sets how long a transaction stays open at most before
// it is committed (default 100ms). It bounds the latency of every hop.
func WithCommitInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.commitInterval = d })
}

// WithCommitCount sets after how many consumed records a transaction is
// committed at the latest (default 5000).
func WithCommitCount(n int) Option { return optionFunc(func(c *config) { c.commitCount = n }) }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithCreateTopics controls whether missing topics (internal, ingress and
// egress) are created at start-up (default true).
func WithCreateTopics(create bool) Option {
	return optionFunc(func(c *config) { c.createTopics = create })
}

// WithTransactionTimeout sets the Kafka transaction timeout (default 15s):
// how long the broker waits before it aborts the open transaction of a
// crashed instance.
func WithTransactionTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.txnTimeout = d })
}

// WithSessionTimeout sets the consumer group session timeout (default
// 10s): how long a silent instance keeps its partitions.
func WithSessionTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.sessionTimeout = d })
}

// WithRetries sets how often a failed invocation is retried before its
// message goes to the dead-letter topic (default 3), and the first backoff,
// which doubles with each retry (default 20ms).
func WithRetries(n int, backoff time.Duration) Option {
	return optionFunc(func(c *config) { c.retries, c.retryBackoff = n, backoff })
}

// Faults lets tests break the transaction cycle on purpose. The zero value
// injects nothing. It is exported for the tests of this module and of
// applications; do not use it in production.
type Faults struct {
	// BeforeCommit is called before each commit; returning an error makes
	// the processor abort the transaction instead, as if the commit failed.
	BeforeCommit func() error
	// Committed, if set, is called after each successful commit with the
	// records (topic, partition, offset) whose processing it committed.
	Committed func(records []RecordRef)
}

// RecordRef names a consumed record.
type RecordRef struct {
	Topic     string
	Partition int32
	Offset    int64
}

// WithFaults installs fault injection hooks.
func WithFaults(f *Faults) Option { return optionFunc(func(c *config) { c.faults = f }) }

// WithRemoteFunctions runs the function types for which route returns an
// invoker as remote functions: their messages go, in batches per address
// and at most one request in flight per address, to that invoker (a
// *remote.Client for a StateFun HTTP endpoint) instead of the Registry.
// Their effects join the same transactions as those of embedded
// functions; the consumed offsets are committed only once every request
// they started has completed. route must be safe for concurrent use and
// return nil for function types that are not remote.
func WithRemoteFunctions(route func(functions.TypeName) remote.Invoker) Option {
	return optionFunc(func(c *config) { c.remote = route })
}

// WithClock sets the clock of delayed messages, for tests: the processor
// reads it to stamp a delayed message's due time and to find due ones.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// WithMetrics gives the processor's measurements (invocations, durations,
// remote requests, transactions, lag, recovery; see docs/operations.md) to
// m, e.g. Prometheus metrics made by package prommetrics. The default
// measures nothing.
func WithMetrics(m Metrics) Option {
	return optionFunc(func(c *config) { c.metrics = m })
}

// WithTracerProvider makes the processor trace messages with OpenTelemetry
// spans from tp: a span for each ingress record it routes and for each
// delivery of a message to an address (function type and id, caller,
// attempt, outcome), each a child of the span that sent the message. The
// W3C trace context travels with every message: in the traceparent and
// tracestate headers of the loop, reply, egress and dead-letter records, in
// delayed messages and inbox entries, and in the HTTP requests to remote
// functions; an ingress record with a traceparent header continues its
// trace. The context of a Go function's invocation carries its span. The
// default (or a nil tp) traces nothing, reads no trace headers and adds
// none. The caller owns tp: shut it down after Run returns to export the
// last spans. app.Run makes one from the OTEL_* environment variables;
// see "Tracing" in docs/operations.md.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithIdempotencyWindow sets how long the runtime remembers the
// idempotency key of a delivered message (DefaultIdempotencyWindow): a
// message with the same key for the same address within the window is not
// delivered again. The idempotency topic keeps keys for twice the window.
func WithIdempotencyWindow(d time.Duration) Option {
	return optionFunc(func(c *config) { c.idempotencyWindow = d })
}

// maxThreads bounds WithThreads.
const maxThreads = 256

// WithThreads sets the number of stream threads (default 1). Each thread
// is a member of the application's consumer group with its own share of
// the partitions, its own transactional producer and its own transaction
// cycle, as a Kafka Streams stream thread; more threads use more cores.
// With more than one, the functions of the registry are invoked
// concurrently for addresses of different threads (never for one
// address), so they must be safe for concurrent use.
func WithThreads(n int) Option { return optionFunc(func(c *config) { c.threads = n }) }

// maxStandbys bounds WithStandbys.
const maxStandbys = 16

// WithStandbys sets how many warm standby copies of each loop partition's
// local store the instances keep (default 0), as Kafka Streams'
// num.standby.replicas: besides its own partitions, an instance tails the
// changelogs (tables, delayed messages, inboxes, idempotency keys) of
// partitions that other instances own into its local store, read_committed,
// so that when it takes one over it reads only the last records instead
// of the whole changelog. A partition has at most one standby per other
// instance (threads of one instance share their stores); the assignor
// gives the partitions of an instance that leaves to the instances that
// keep their standbys. Every instance of an application should run with
// the same value: the group leader's counts.
func WithStandbys(n int) Option { return optionFunc(func(c *config) { c.standbys = n }) }
