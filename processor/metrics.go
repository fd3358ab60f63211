package processor

import (
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
)

// Metrics receives the measurements of a processor. Package prommetrics
// implements it with Prometheus metrics; give one to WithMetrics. The
// methods are called from the processor's goroutines and must be safe for
// concurrent use and quick.
type Metrics interface {
	// Invocation records an invocation attempt of a function type (kind
	// "local"), or a remote request carrying messages messages (kind
	// "remote"), that took took and failed with err, or succeeded.
	Invocation(fn functions.TypeName, kind string, messages int, took time.Duration, err error)
	// Outgoing records what a successful invocation sent: messages to
	// addresses, egress records, delayed messages and cancellations.
	Outgoing(fn functions.TypeName, messages, egress, delayed int)
	// DeadLetter records a record written to the dead-letter topic for a
	// function type ("" when it reached none).
	DeadLetter(fn functions.TypeName)
	// Remote reports the requests in flight, the messages queued behind
	// them and the addresses blocked by their backlog, of a remote
	// function type, whenever they change.
	Remote(fn functions.TypeName, inFlight, queued, blocked int)
	// Commit records a committed transaction and the time its commit took.
	Commit(took time.Duration)
	// Abort records an aborted transaction.
	Abort()
	// Lag reports the records of a consumed partition not committed yet
	// (see lag.go); LagGone, that the partition is no longer consumed here.
	Lag(topic string, partition int32, records int64)
	LagGone(topic string, partition int32)
	// Recovered reports how many loop partitions have recovered their
	// state; RecoveryRecords adds changelog records recovery read.
	Recovered(partitions int)
	RecoveryRecords(n int64)
	// TimersFired adds delayed messages sent when due.
	TimersFired(n int)
	// Expired adds expired state values removed by the sweep.
	Expired(n int)
}

// noMetrics is the Metrics of a processor without WithMetrics.
type noMetrics struct{}

func (noMetrics) Invocation(functions.TypeName, string, int, time.Duration, error) {}
func (noMetrics) Outgoing(functions.TypeName, int, int, int)                       {}
func (noMetrics) DeadLetter(functions.TypeName)                                    {}
func (noMetrics) Remote(functions.TypeName, int, int, int)                         {}
func (noMetrics) Commit(time.Duration)                                             {}
func (noMetrics) Abort()                                                           {}
func (noMetrics) Lag(string, int32, int64)                                         {}
func (noMetrics) LagGone(string, int32)                                            {}
func (noMetrics) Recovered(int)                                                    {}
func (noMetrics) RecoveryRecords(int64)                                            {}
func (noMetrics) TimersFired(int)                                                  {}
func (noMetrics) Expired(int)                                                      {}

// remoteCounts passes the batcher's counts of a function type to m.
func remoteCounts(m Metrics) func(functions.TypeName, remote.TypeCounts) {
	return func(fn functions.TypeName, c remote.TypeCounts) { m.Remote(fn, c.InFlight, c.Queued, c.Blocked) }
}
