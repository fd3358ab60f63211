package processor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// Internal topics are not for egress records, and recovery never trusts a
// table record it cannot decode.

type resvCmd struct {
	Op    string `json:"op"`
	Topic string `json:"topic,omitempty"`
}

var (
	resvFn    = functions.TypeName("test/count")
	resvCmdT  = functions.NewType("test/resv-cmd", codec.JSON[resvCmd]())
	resvCount = functions.NewState("count", functions.LongType)
	resvAny   = functions.TypeName("test/any")
	resvOut   = functions.TypeName("test/out")
)

// resvApp counts the messages of each address and writes "<id>=<count>"
// to <app>-out; a message with op "egress" writes a record keyed "x" to
// the topic it names instead, through an egress that lets each record
// name its topic (as a StateFun Kafka egress does).
func resvApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: resvFn,
		Function: functions.Router(functions.Handle(resvCmdT, func(ctx functions.Context, c resvCmd) error {
			if c.Op == "egress" {
				ctx.SendEgress(resvAny, functions.KafkaMessage(c.Topic, "x", []byte("overwritten by an egress")))
				return nil
			}
			n, _ := resvCount.Get(ctx)
			n++
			resvCount.Set(ctx, n)
			id := ctx.Self().ID
			ctx.SendEgress(resvOut, functions.KafkaMessage("", id, []byte(id+"="+strconv.FormatInt(n, 10))))
			return nil
		})),
		State:    []functions.StateSpec{resvCount},
		Egresses: []functions.TypeName{resvAny, resvOut},
	})
	topo := topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  []functions.TypeName{resvFn},
		Namespaces: []string{"ns"},
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: resvCmdT.Name(), Targets: []functions.TypeName{resvFn}}},
		Egresses: []topology.Egress{
			{ID: resvAny, AnyTopic: true},
			{ID: resvOut, Topics: []topology.Topic{topology.Topic(app + "-out")}},
		},
	}
	return topo, reg
}

func startResv(t *testing.T, brokers []string, app string) func() {
	t.Helper()
	topo, reg := resvApp(app)
	p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	return stop
}

func sendResv(t *testing.T, client sarama.Client, app, id string, c resvCmd) {
	t.Helper()
	b, err := resvCmdT.Codec().Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, client, app+"-in", [2][]byte{[]byte(id), b})
}

// waitCounts waits until <app>-out shows the given last count per id.
func waitCounts(t *testing.T, client sarama.Client, app string, want map[string]int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("counts %v", want), func() (bool, string) {
		got := map[string]int{}
		for _, r := range readTopic(t, client, app+"-out") {
			id, n, _ := strings.Cut(string(r.Value), "=")
			got[id], _ = strconv.Atoi(n)
		}
		for id, n := range want {
			if got[id] != n {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
}

// Regression: a StateFun egress record naming <app>-<type>-table
// overwrote another address's state (after a restart its count began
// again at 1, or the address could no longer be read and every message to
// it was dead-lettered); records also landed in the timers, loop,
// dead-letter, replies and idempotency topics and in __consumer_offsets.
func TestEgressRecordsToInternalTopicsAreDeadLetteredAndStateSurvives(t *testing.T) {
	brokers, app := testBroker(t, "resv")
	client := testClient(t, brokers)
	stop := startResv(t, brokers, app)
	sendResv(t, client, app, "x", resvCmd{Op: "count"})
	sendResv(t, client, app, "x", resvCmd{Op: "count"})
	sendResv(t, client, app, "y", resvCmd{Op: "count"})
	waitCounts(t, client, app, map[string]int{"x": 2, "y": 1})

	topo, _ := resvApp(app)
	internal := []string{
		string(topo.TableTopic(resvFn)), app + "-ns_.other-table", app + "-loop", app + "-dlq", app + "-timers",
		app + "-replies", app + "-idempotency", app + "-positions", "__consumer_offsets", "__transaction_state",
	}
	for _, topic := range internal {
		sendResv(t, client, app, "e", resvCmd{Op: "egress", Topic: topic})
	}
	waitFor(t, 30*time.Second, "a dead letter per internal topic", func() (bool, string) {
		n := 0
		for _, r := range readTopic(t, client, app+"-dlq") {
			if strings.Contains(r.Headers["stateloop.error"], "egress records never go to internal topics") {
				n++
			}
		}
		return n == len(internal), fmt.Sprintf("%d dead letters", n)
	})
	for _, topic := range internal {
		found := false
		for _, r := range readTopic(t, client, app+"-dlq") {
			if strings.Contains(r.Headers["stateloop.error"], fmt.Sprintf("topic %q is ", topic)) {
				found = true
			}
		}
		if !found {
			t.Errorf("no dead letter names topic %s", topic)
		}
	}
	for _, topic := range internal[:len(internal)-2] {
		if !slices.Contains(topicNames(t, client), topic) {
			continue
		}
		for _, r := range readTopic(t, client, topic) {
			if strings.Contains(string(r.Value), "overwritten by an egress") {
				t.Errorf("an egress record was written to %s/%d at %d", topic, r.Partition, r.Offset)
			}
		}
	}

	// a new instance recovers the state from the table: x goes on at 3
	stop()
	startResv(t, brokers, app)
	sendResv(t, client, app, "x", resvCmd{Op: "count"})
	sendResv(t, client, app, "y", resvCmd{Op: "count"})
	waitCounts(t, client, app, map[string]int{"x": 3, "y": 2})
}

// Regression: a table record that does not decode (written by another
// producer) was stored as the address's state on recovery; every later
// message to the address then failed ("wire: malformed record") and went
// to the dead-letter topic, and an empty value made a count start again.
func TestRecoveryLeavesOutTableRecordsThatDoNotDecode(t *testing.T) {
	brokers, app := testBroker(t, "resv-rec")
	client := testClient(t, brokers)
	stop := startResv(t, brokers, app)
	for _, id := range []string{"z", "z", "w"} {
		sendResv(t, client, app, id, resvCmd{Op: "count"})
	}
	waitCounts(t, client, app, map[string]int{"z": 2, "w": 1})
	stop()

	topo, _ := resvApp(app)
	table := string(topo.TableTopic(resvFn))
	prod := newDLQProducer(t, brokers)
	offZ := prod.send(table, partitionFor("z", 4), []byte("z"), []byte{0x0a, 0x40, 'b', 'a', 'd'})
	offW := prod.send(table, partitionFor("w", 4), []byte("w"), []byte{})

	// in-memory stores: the new instance recovers from the whole table
	startResv(t, brokers, app)
	sendResv(t, client, app, "z", resvCmd{Op: "count"})
	sendResv(t, client, app, "w", resvCmd{Op: "count"})
	waitCounts(t, client, app, map[string]int{"z": 3, "w": 2})

	want := map[string]int64{"z": offZ, "w": offW}
	waitFor(t, 30*time.Second, "dead letters of the two table records", func() (bool, string) {
		var got []string
		for _, r := range readTopic(t, client, app+"-dlq") {
			got = append(got, fmt.Sprintf("%s@%s: %s", r.Headers["stateloop.source.topic"], r.Headers["stateloop.source.offset"], r.Headers["stateloop.error"]))
			off, ok := want[r.Key]
			if ok && r.Headers["stateloop.source.topic"] == table && r.Headers["stateloop.source.offset"] == strconv.FormatInt(off, 10) &&
				strings.Contains(r.Headers["stateloop.error"], "does not decode") {
				delete(want, r.Key)
			}
		}
		return len(want) == 0, strings.Join(got, "; ")
	})
	for _, r := range readTopic(t, client, app+"-dlq") {
		if r.Headers["stateloop.source.topic"] != table {
			t.Errorf("a message was dead-lettered: %v", r.Headers)
		}
	}
}

// topicNames lists the topics of the cluster.
func topicNames(t testing.TB, client sarama.Client) []string {
	t.Helper()
	if err := client.RefreshMetadata(); err != nil {
		t.Fatal(err)
	}
	names, err := client.Topics()
	if err != nil {
		t.Fatal(err)
	}
	return names
}
