package smoke

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Config of a smoke run. Start from [DefaultConfig]: a zero field does not
// mean its default (zero kills and an unpaced rate are valid settings).
type Config struct {
	// Brokers of a running Kafka cluster; empty starts an embedded broker.
	Brokers []string
	// InProcess runs the embedded broker in this process instead of a
	// child process (for tests).
	InProcess bool
	// App names the application (consumer group, topic prefix); empty
	// picks "smoke-<random>". A name must not be reused: the counts of an
	// earlier run would be over-counts.
	App string
	// Partitions of every topic of the application (default 8).
	Partitions int32
	// Messages is the number of source commands (default 20,000).
	Messages int
	// Rate is how many source commands per second are produced (default
	// 1,000); 0 produces as fast as possible.
	Rate int
	// Generator makes the commands; its IDs is the number of function ids
	// (default 128). Delayed messages and their cancellation are on by
	// default; async operations must stay off.
	Generator GeneratorConfig
	// MaxDelay is the longest delay of a delayed message (default 2s): the
	// function delays each SendAfter by a random time from 0 to MaxDelay.
	// The verification waits for the longest chain of delayed messages to
	// have fired before it passes the run or reports a loss, so a longer
	// MaxDelay makes longer runs.
	MaxDelay time.Duration
	// Workers is the number of worker processes (default 2).
	Workers int
	// Kills is how many times a random worker is killed with SIGKILL and
	// restarted while the commands are produced: one kill at a random
	// moment in each of Kills equal parts of the production (default 4).
	// A kill waits until every worker is ready again after the previous
	// one (unless KillAnytime); kills still due when the last command is
	// produced follow it.
	Kills int
	// KillAnytime kills on schedule without waiting for the workers to be
	// ready, so kills also hit workers that are recovering their state or
	// joining the group.
	KillAnytime bool
	// Seed of the command generator and of the kill schedule; 0 picks a
	// random one (printed, to run the same commands again).
	Seed int64
	// Timeout bounds the whole run (default 5m). Ids that have not reached
	// their count by then are reported as lost. With delayed messages the
	// verification may go on past it, until every delayed message must
	// have fired (see [Result.Settle]).
	Timeout time.Duration
	// VerifyInterval is the time between two rounds of Verify commands
	// (default 2s, as upstream).
	VerifyInterval time.Duration
	// SessionTimeout of the workers' consumer group sessions: how long a
	// killed worker's partitions stay unowned. 0 means 2s on the embedded
	// broker and 6s with Brokers (Kafka's default minimum).
	SessionTimeout time.Duration
	// CommitInterval of the workers (default 100ms).
	CommitInterval time.Duration
	// DataDir holds the workers' local state stores; empty uses a
	// temporary directory, removed after the run.
	DataDir string
	// StartWorker makes the command of a worker process. Required.
	StartWorker StartFunc
	// Progress receives a progress line every ProgressInterval (default
	// 1s) and a line per kill; nil discards them.
	Progress         io.Writer
	ProgressInterval time.Duration
	// WorkerLog receives the workers' log lines, prefixed with the
	// worker's name; nil discards them (the end of a worker's log is still
	// quoted when it fails). WorkerLogLevel is their level (default warn).
	WorkerLog      io.Writer
	WorkerLogLevel slog.Level
	// Logger receives the embedded broker's log (default: discard).
	Logger *slog.Logger

	// skipProduce, a test hook, makes the driver count the command seq
	// without producing it: the run must then fail with a loss.
	skipProduce func(seq int) bool
}

// DefaultConfig returns the defaults of every field.
func DefaultConfig() Config {
	return Config{
		Partitions:       8,
		Messages:         20_000,
		Rate:             1000,
		Generator:        DefaultGeneratorConfig(),
		MaxDelay:         2 * time.Second,
		Workers:          2,
		Kills:            4,
		Timeout:          5 * time.Minute,
		VerifyInterval:   2 * time.Second,
		CommitInterval:   100 * time.Millisecond,
		ProgressInterval: time.Second,
		WorkerLogLevel:   slog.LevelWarn,
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("smoke: "+format, a...)) }
	if c.Partitions <= 0 {
		add("partitions %d: must be positive", c.Partitions)
	}
	if c.Messages <= 0 {
		add("messages %d: must be positive", c.Messages)
	}
	if c.Rate < 0 {
		add("rate %d: must not be negative", c.Rate)
	}
	if c.Workers <= 0 {
		add("workers %d: must be positive", c.Workers)
	}
	if c.Kills < 0 {
		add("kills %d: must not be negative", c.Kills)
	}
	if c.Timeout <= 0 {
		add("timeout %v: must be positive", c.Timeout)
	}
	if c.VerifyInterval <= 0 {
		add("verify interval %v: must be positive", c.VerifyInterval)
	}
	if c.SessionTimeout < 0 || c.SessionTimeout > 0 && c.SessionTimeout < time.Second {
		add("session timeout %v: want at least 1s", c.SessionTimeout)
	}
	if c.CommitInterval <= 0 {
		add("commit interval %v: must be positive", c.CommitInterval)
	}
	if c.ProgressInterval <= 0 {
		add("progress interval %v: must be positive", c.ProgressInterval)
	}
	if c.StartWorker == nil {
		add("no StartWorker function to start worker processes with")
	}
	if err := c.Generator.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Generator.AsyncOperations {
		add("async operations are not supported by the runtime yet")
	}
	if c.MaxDelay < 0 {
		add("max delay %v: must not be negative", c.MaxDelay)
	}
	if c.App != "" {
		if err := Topology(c.App, max(c.Partitions, 1)).Validate(); err != nil {
			add("app %q: %v", c.App, err)
		}
	}
	return errors.Join(errs...)
}
