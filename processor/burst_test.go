package processor

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// slowInvoker answers every request after a round trip, without effects,
// and counts the requests and the calls they carry.
type slowInvoker struct {
	rtt             time.Duration
	mu              sync.Mutex
	requests, calls int
}

func (c *slowInvoker) Invoke(ctx context.Context, _ functions.Address, _ map[string]driver.StoredValue, batch []remote.Call) (*remote.Result, error) {
	select {
	case <-time.After(c.rtt):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	c.calls += len(batch)
	return &remote.Result{}, nil
}

func (c *slowInvoker) counts() (requests, calls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, c.calls
}

// Regression: the session's loop took waiting records and remote
// completions at random, one at a time, so under a backlog each remote
// address got its calls one to three per request (0.32 HTTP requests per
// message in stateloop-bench --remote on Apache Kafka). Records already
// waiting are now taken in a burst, so the calls of a backlog queue up
// behind their address's request and go out in batches.
func TestCycleBatchesTheRemoteCallsOfABacklog(t *testing.T) {
	const remoteFn functions.TypeName = "unit/remote"
	topo := topology.Topology{
		App:        "unit",
		Partitions: 2,
		Functions:  []functions.TypeName{remoteFn},
		Ingresses:  []topology.Ingress{{Topic: "unit-in", ValueType: functions.StringType.Name(), Targets: []functions.TypeName{remoteFn}}},
	}
	inv := &slowInvoker{rtt: 200 * time.Microsecond}
	rig := newCycleRig(t, topo, functions.NewRegistry(), WithRemoteFunctions(func(fn functions.TypeName) remote.Invoker {
		if fn == remoteFn {
			return inv
		}
		return nil
	}))
	// a backlog of 4,000 records of 20 ids, round robin, handed over as
	// fast as the session takes them, as a consumer with a backlog does
	const ids, perID = 20, 200
	go rig.s.run()
	for i := range ids * perID {
		id := "id" + strconv.Itoa(i%ids)
		part := partitionFor(id, topo.PartitionCount())
		v := str("m")
		off := rig.fk.append("unit-in", part, fakeRecord{key: []byte(id), value: v})
		rig.s.items <- item{msg: &record{Topic: "unit-in", Partition: part, Offset: off, Key: []byte(id), Value: v}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, calls := inv.counts(); calls == ids*perID {
			break
		}
		if time.Now().After(deadline) {
			_, calls := inv.counts()
			t.Fatalf("%d of %d calls made after 30s", calls, ids*perID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rig.s.cancel(errors.New("test over"))
	rig.s.stop()
	if err := rig.s.fatalErr(); err != nil {
		t.Fatal(err)
	}
	requests, calls := inv.counts()
	// at best one request with the first call of each id and one with the
	// other 199: 40 requests, 0.01 per call
	if perCall := float64(requests) / float64(calls); perCall > 0.05 {
		t.Errorf("%d requests for %d calls of %d ids: %.3f per call, want at most 0.05 (batches of 20 or more)", requests, calls, ids, perCall)
	} else {
		t.Logf("%d requests for %d calls of %d ids: %.3f per call", requests, calls, ids, perCall)
	}
}
