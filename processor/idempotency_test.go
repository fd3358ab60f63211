package processor

import (
	"fmt"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
)

// TestIdempotencyKeyDeliversAMessageOnce writes messages with idempotency
// keys straight to the loop topic, as the HTTP ingress does, the same key
// several times (also after a restart on a new instance with an empty
// store, and once for another address): each key reaches each address
// once.
func TestIdempotencyKeyDeliversAMessageOnce(t *testing.T) {
	brokers, app := testBroker(t, "idem")
	topo, reg := sessionApp(app)
	client := testClient(t, brokers)
	name, err := functions.StringType.Codec().Encode("ann")
	if err != nil {
		t.Fatal(err)
	}
	send := func(id, key string) {
		t.Helper()
		env := wire.Envelope{Target: functions.Address{Type: sessionFn, ID: id}, Argument: functions.NewMessage(functions.StringType.Name(), name), IdempotencyKey: key}
		produce(t, client, app+"-loop", [2][]byte{[]byte(id), wire.AppendEnvelope(nil, env)})
	}
	visits := func(want int) {
		t.Helper()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d visits", want), func() (bool, string) {
			n := len(readTopic(t, client, app+"-out"))
			return n >= want, fmt.Sprintf("%d visits", n)
		})
	}
	run := func(instance string) func() {
		p, err := New(brokers, topo, reg, WithInstanceID(instance), WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		stop := runProcessor(t, p)
		waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
		return stop
	}
	stop := run("a")
	send("k1", "order-1")
	send("k1", "order-1")
	send("k1", "order-2")
	send("k2", "order-1") // the same key for another address is another message
	visits(3)
	stop()
	stop = run("b") // recovers the keys into an empty store
	send("k1", "order-1")
	send("k1", "order-2")
	send("k1", "order-3")
	visits(4)
	time.Sleep(300 * time.Millisecond)
	stop()
	got := map[string]int{}
	for _, r := range readTopic(t, client, app+"-out") {
		got[r.Key]++
	}
	if got["k1"] != 3 || got["k2"] != 1 {
		t.Errorf("deliveries per address %v, want k1 3 (order-1, -2, -3) and k2 1", got)
	}
}
