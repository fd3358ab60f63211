//go:build integration

package app_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// The tests in this file run against a real Apache Kafka given by
// KAFKA_BROKERS (scripts/kafka.sh start prints it), with the build tag
// integration: `go test -tags integration -run Kafka ./app/`.

// renamed returns build with the application and its ingress topics named
// after suffix, so every run starts on topics that never existed. (The
// egress topics keep their names: the functions name them in their egress
// records; the tests tell their own records by their keys.)
func renamed(build func() (topology.Topology, *functions.Registry), suffix string) func() (topology.Topology, *functions.Registry) {
	return func() (topology.Topology, *functions.Registry) {
		topo, reg := build()
		topo.App += "-" + suffix
		ins := make([]topology.Ingress, len(topo.Ingresses))
		for i, in := range topo.Ingresses {
			in.Topic = topology.Topic(string(in.Topic) + "-" + suffix)
			ins[i] = in
		}
		topo.Ingresses = ins
		return topo, reg
	}
}

// TestKafkaFirstStartOnNewTopics is the regression test of issue 10 (5):
// on Apache Kafka, the first start of the greeter and of the fraud example
// exited right after creating their topics, with "Request was for a topic
// or partition that does not exist on this broker": Kafka makes a new
// topic known to clients some time after it confirms its creation, and
// with a dozen new topics of 8 partitions that took longer than the
// metadata retries the runtime relied on. Both start here at once on
// topics that never existed, with their default partition count, and must
// not exit and must produce their output.
func TestKafkaFirstStartOnNewTopics(t *testing.T) {
	brokers := kafkatest.KafkaBrokers(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	client := kafkatest.Client(t, brokers)
	send := func(t *testing.T, topic, key, value string) {
		t.Helper()
		sp, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value)}); err != nil {
			t.Fatalf("write to %s: %v", topic, err)
		}
	}
	// await waits until a committed record of topic satisfies found.
	await := func(t *testing.T, r *apptest.Run, topic, what string, found func(kafkatest.Record) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			for _, rec := range kafkatest.Records(t, client, topic) {
				if found(rec) {
					return
				}
			}
			select {
			case err := <-r.Err:
				t.Fatalf("the application exited before writing %s: %v; output:\n%s", what, err, r.Out)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s on %s after 60s; output:\n%s", what, topic, r.Out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// 32 partitions: the more partitions a start creates, the longer Kafka
	// takes to make the last topics known, so the test does not depend on
	// the speed of the machine (with the default 8 it failed about half of
	// the time before the fix)
	start := func(t *testing.T, build func() (topology.Topology, *functions.Registry), http string) *apptest.Run {
		t.Helper()
		topo, _ := build()
		r := apptest.Start(t, app.Flags{Brokers: brokers, DataDir: t.TempDir(), Partitions: 32, CommitInterval: 50 * time.Millisecond,
			LogLevel: "warn", HTTP: http}, build)
		r.WaitFor(t, "application "+topo.App+" ready", 120*time.Second)
		return r
	}

	t.Run("greeter", func(t *testing.T) {
		t.Parallel()
		// with the HTTP listener, whose reader of the replies topic starts
		// before the processor has created it
		build := renamed(greeter.Build, suffix)
		r := start(t, build, "127.0.0.1:0")
		name := "Alice-" + suffix
		send(t, string(greeter.NamesTopic)+"-"+suffix, name, name)
		await(t, r, string(greeter.GreetingsTopic), "the greeting of "+name, func(rec kafkatest.Record) bool {
			return string(rec.Key) == name && string(rec.Value) == greeter.Greeting(name, 1)
		})

		_, after, _ := strings.Cut(r.Out.String(), "HTTP listener on http://")
		addr, _, _ := strings.Cut(after, " ")
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/functions/greeter/greet/"+name, strings.NewReader(name))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Stateloop-Type", greeter.NameType.Name().String())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST to %s: %s %s", addr, resp.Status, body)
		}
		await(t, r, string(greeter.GreetingsTopic), "the greeting of "+name+" sent over HTTP", func(rec kafkatest.Record) bool {
			return string(rec.Key) == name && string(rec.Value) == greeter.Greeting(name, 2)
		})
		topo, _ := build()
		if err := client.RefreshMetadata(string(topo.RepliesTopic())); err != nil {
			t.Fatal(err)
		}
		if parts, err := client.Partitions(string(topo.RepliesTopic())); err != nil || len(parts) != 32 {
			t.Errorf("topic %s: %d partitions (%v), want 32", topo.RepliesTopic(), len(parts), err)
		}
		if strings.Contains(r.Out.String(), "HTTP listener: ") {
			t.Errorf("the HTTP listener failed:\n%s", r.Out)
		}
	})
	t.Run("fraud", func(t *testing.T) {
		t.Parallel()
		r := start(t, renamed(fraud.Build, suffix), "")
		tx := fraud.Transaction{ID: "tx-" + suffix, Account: "acct-" + suffix, Merchant: "coffee-bar", Amount: 12.5, Time: time.Now()}
		v, err := json.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		send(t, string(fraud.TransactionsTopic)+"-"+suffix, tx.ID, string(v))
		await(t, r, string(fraud.ScoresTopic), "the decision on "+tx.ID, func(rec kafkatest.Record) bool {
			var d fraud.Decision
			return string(rec.Key) == tx.Account && json.Unmarshal(rec.Value, &d) == nil && d.Transaction.ID == tx.ID
		})
	})
}
