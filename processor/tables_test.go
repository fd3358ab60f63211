package processor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// A table topic that does not fit the application (another partition
// count, no compaction) is refused: at start-up for the topology's types,
// as dead letters for the types of its namespaces.

func createTopic(t *testing.T, client sarama.Client, name string, partitions int32, policy string) {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1, ConfigEntries: map[string]*string{"cleanup.policy": &policy}}
	if err := admin.CreateTopic(name, detail, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	// Apache Kafka answers CreateTopics before every partition's leader
	// serves it ("not the leader for some partition"): wait until each
	// partition answers a ListOffsets.
	waitFor(t, 30*time.Second, "topic "+name+" served", func() (bool, string) {
		if err := client.RefreshMetadata(name); err != nil {
			return false, err.Error()
		}
		for part := range partitions {
			if _, err := client.GetOffset(name, part, sarama.OffsetNewest); err != nil {
				return false, fmt.Sprintf("partition %d: %v", part, err)
			}
		}
		return true, ""
	})
}

func TestTablesThatDoNotFitAreRefusedAtStartUp(t *testing.T) {
	for _, tc := range []struct {
		name       string
		partitions int32
		policy     string
		want       string
	}{
		{"another partition count", 2, "compact", "has 2 partitions, the application needs 4"},
		{"not compacted", 4, "delete", "has cleanup.policy=delete, the application needs it compacted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers, app := testBroker(t, "badtable")
			app += strconv.Itoa(int(tc.partitions))
			client := testClient(t, brokers)
			topo, reg := resvApp(app)
			createTopic(t, client, string(topo.TableTopic(resvFn)), tc.partitions, tc.policy)
			p, err := New(brokers, topo, reg, WithLogger(testLogger(t)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = p.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// Regression: a GET of the state of a namespace type that had no table yet
// created its table with the broker's defaults (one partition, not
// compacted); the application then took that table for the type's, and
// every message to the type was dead-lettered with "partitioner returned
// an invalid partition index", across restarts, while its state (had it
// been written) would have been deleted by retention.
func TestNamespaceTableThatDoesNotFitIsRefusedAndOthersWork(t *testing.T) {
	brokers, app := testBroker(t, "nstable")
	client := testClient(t, brokers)
	reg := functions.NewRegistry()
	for _, fn := range []functions.TypeName{"ns/good", "ns/bad"} {
		reg.MustRegister(functions.Spec{
			Type: fn,
			Function: functions.Router(functions.Handle(resvCmdT, func(ctx functions.Context, c resvCmd) error {
				n, _ := resvCount.Get(ctx)
				n++
				resvCount.Set(ctx, n)
				a := ctx.Self()
				ctx.SendEgress(resvOut, functions.KafkaMessage("", a.ID, []byte(fmt.Sprintf("%s:%s=%d", a.Type, a.ID, n))))
				return nil
			})),
			State:    []functions.StateSpec{resvCount},
			Egresses: []functions.TypeName{resvOut},
		})
	}
	topo := topology.Topology{App: app, Partitions: 4, Namespaces: []string{"ns"},
		Egresses: []topology.Egress{{ID: resvOut, Topics: []topology.Topic{topology.Topic(app + "-out")}}}}
	// as a stray GET did: the broker's defaults
	createTopic(t, client, string(topo.TableTopic("ns/bad")), 1, "delete")
	toLoop := func(fn functions.TypeName, id string) {
		env := wire.Envelope{Target: functions.Address{Type: fn, ID: id}, Argument: resvCmdT.Of(resvCmd{Op: "count"})}
		newDLQProducer(t, brokers).send(app+"-loop", partitionFor(id, 4), []byte(id), wire.AppendEnvelope(nil, env))
	}
	for round := 1; round <= 2; round++ {
		p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		stop := runProcessor(t, p)
		waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
		toLoop("ns/good", "a")
		toLoop("ns/bad", "b")
		waitFor(t, 30*time.Second, fmt.Sprintf("round %d: ns/good counted, ns/bad dead-lettered", round), func() (bool, string) {
			good := false
			for _, r := range readTopic(t, client, app+"-out") {
				if string(r.Value) == fmt.Sprintf("ns/good:a=%d", round) {
					good = true
				}
				if strings.HasPrefix(string(r.Value), "ns/bad") {
					t.Fatalf("ns/bad was invoked: %s", r.Value)
				}
			}
			bad := 0
			for _, r := range readTopic(t, client, app+"-dlq") {
				reason := r.Headers["stateloop.error"]
				if r.Headers["stateloop.function.type"] == "ns/bad" && strings.Contains(reason, "has 1 partitions, the application needs 4") &&
					strings.Contains(reason, "cleanup.policy=delete") {
					bad++
				}
			}
			return good && bad == round, fmt.Sprintf("good %v, %d dead letters", good, bad)
		})
		stop()
	}
}
