package bench

import (
	"sync"
	"time"

	"github.com/stateloop/stateloop/functions"
)

// commitClock is the processor.Metrics of a runtime side: it keeps the
// time the commits took (processor.Metrics.Commit: from handing the
// transaction's last records to the producer to the end of CommitTxn and
// every acknowledgement) and ignores the rest. The raw side times its
// commits with one too.
type commitClock struct {
	mu    sync.Mutex
	n     int64
	total time.Duration
	max   time.Duration
}

// commitTimes are a commitClock's readings at one moment.
type commitTimes struct {
	n          int64
	total, max time.Duration
}

// read returns the readings so far and starts a new maximum.
func (c *commitClock) read() commitTimes {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := commitTimes{n: c.n, total: c.total, max: c.max}
	c.max = 0
	return t
}

func (c *commitClock) Commit(took time.Duration) {
	c.mu.Lock()
	c.n++
	c.total += took
	c.max = max(c.max, took)
	c.mu.Unlock()
}

func (*commitClock) Invocation(functions.TypeName, string, int, time.Duration, error) {}
func (*commitClock) Outgoing(functions.TypeName, int, int, int)                       {}
func (*commitClock) DeadLetter(functions.TypeName)                                    {}
func (*commitClock) Remote(functions.TypeName, int, int, int)                         {}
func (*commitClock) Abort()                                                           {}
func (*commitClock) Lag(string, int32, int64)                                         {}
func (*commitClock) LagGone(string, int32)                                            {}
func (*commitClock) Recovered(int)                                                    {}
func (*commitClock) RecoveryRecords(int64)                                            {}
func (*commitClock) TimersFired(int)                                                  {}
func (*commitClock) Expired(int)                                                      {}
