package processor

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// The session application: test/session counts visits in a value that
// expires 5 minutes after its last write, and keeps the last visitor's
// name in one that expires an hour after the last call. Each visit
// writes "<id> visits=<count before> last=<name before>" to the egress.
var (
	sessionFn   = functions.TypeName("test/session")
	visitsState = functions.NewState("visits", functions.IntType).ExpireAfterWrite(5 * time.Minute)
	lastState   = functions.NewState("last", functions.StringType).ExpireAfterCall(time.Hour)
	sessionOut  = functions.TypeName("test/session-out")
)

func sessionApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: sessionFn, State: []functions.StateSpec{visitsState, lastState}, Egresses: []functions.TypeName{sessionOut},
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, name string) error {
			n, _ := visitsState.Get(ctx)
			last, _ := lastState.Get(ctx)
			if name != "look" { // "look" only reads: it moves the after-call expiry alone
				visitsState.Set(ctx, n+1)
				lastState.Set(ctx, name)
			}
			ctx.SendEgress(sessionOut, functions.KafkaMessage("", ctx.Self().ID, fmt.Appendf(nil, "%s visits=%d last=%s", ctx.Self().ID, n, last)))
			return nil
		}))})
	return topology.Topology{App: app, Partitions: 4, Functions: []functions.TypeName{sessionFn},
		Ingresses: []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: functions.StringType.Name(), Targets: []functions.TypeName{sessionFn}}},
		Egresses:  []topology.Egress{{ID: sessionOut, Topics: []topology.Topic{topology.Topic(app + "-out")}}},
	}, reg
}

// TestExpiredStateReadsAsAbsentAndIsSweptFromTheTable drives a fake clock:
// a value expiring after write is absent once its time has passed since
// the last write, one expiring after call lives on while the address is
// called, and once everything has expired the sweep writes a tombstone
// to the table, without any message to the address.
func TestExpiredStateReadsAsAbsentAndIsSweptFromTheTable(t *testing.T) {
	brokers, app := testBroker(t, "expiry")
	topo, reg := sessionApp(app)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	p, err := New(brokers, topo, reg, WithClock(clock.Now), WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	client := testClient(t, brokers)
	visit := func(name string, want string) {
		t.Helper()
		b, err := functions.StringType.Codec().Encode(name)
		if err != nil {
			t.Fatal(err)
		}
		before := len(readTopic(t, client, app+"-out"))
		produce(t, client, app+"-in", [2][]byte{[]byte("k1"), b})
		var got string
		waitFor(t, 10*time.Second, "the visit's egress record", func() (bool, string) {
			recs := readTopic(t, client, app+"-out")
			if len(recs) > before {
				got = string(recs[len(recs)-1].Value)
				return true, ""
			}
			return false, fmt.Sprintf("%d records", len(recs))
		})
		if got != want {
			t.Errorf("at %v after %q: egress %q, want %q", clock.Now().Format(time.TimeOnly), name, got, want)
		}
	}
	visit("ann", "k1 visits=0 last=")
	clock.Advance(4 * time.Minute)
	visit("bob", "k1 visits=1 last=ann")
	clock.Advance(4 * time.Minute) // 4 min after the last write: still there
	visit("look", "k1 visits=2 last=bob")
	clock.Advance(2 * time.Minute) // 6 min after the last write: visits expired
	visit("look", "k1 visits=0 last=bob")
	clock.Advance(59 * time.Minute) // last lives on: an hour after the last call
	visit("look", "k1 visits=0 last=bob")

	clock.Advance(61 * time.Minute) // everything expired; nobody calls
	table := string(topo.TableTopic(sessionFn))
	waitFor(t, 10*time.Second, "the sweep's tombstone", func() (bool, string) {
		recs := readTopic(t, client, table)
		last := recs[len(recs)-1]
		return last.Key == "k1" && last.Value == nil, fmt.Sprintf("%d table records, last %q=%q; stats %+v", len(recs), last.Key, last.Value, p.Stats())
	})
	// the sweep removed last; visits had left with the call that found it
	// expired
	if s := p.Stats(); s.Expired != 1 {
		t.Errorf("Stats.Expired = %d, want 1 (last)", s.Expired)
	}
	visit("cat", "k1 visits=0 last=")
}
