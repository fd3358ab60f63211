package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// TestGreeterEndToEnd runs the application with app.Run against an
// in-process broker, writes names as kcat would and reads the greetings
// with read_committed.
func TestGreeterEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	b, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", InProcess: true, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}

	out := &kafkatest.SyncBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() {
		runErr <- app.Run(runCtx, app.Flags{
			Brokers:        brokers,
			DataDir:        t.TempDir(),
			Partitions:     4,
			CommitInterval: 20 * time.Millisecond,
			LogLevel:       "error",
		}, greeter.Build, out)
	}()
	waitForLine(t, out, runErr, "application greeter ready")

	client := newClient(t, brokers)
	produceNames(t, client, "Alice", "Bob", "Alice", "Alice")
	got := readGreetings(ctx, t, client, 4)

	want := map[string][]string{
		"Alice": {"Hello Alice!", "Hello again, Alice!", "Third time is a charm, Alice!"},
		"Bob":   {"Hello Bob!"},
	}
	for name, greetings := range want {
		if !slices.Equal(got[name], greetings) {
			t.Errorf("greetings for key %s: got %q, want %q", name, got[name], greetings)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got greetings for keys %v, want Alice and Bob only", keys(got))
	}

	stop()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("app.Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("app.Run did not return after its context was cancelled")
	}
	if !strings.Contains(out.String(), "application greeter stopped") {
		t.Errorf("output lacks the stop line:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("output:\n%s", out)
	}
}

func newClient(t *testing.T, brokers []string) sarama.Client {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	c, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// produceNames writes each name as key and value, one record at a time.
func produceNames(t *testing.T, client sarama.Client, names ...string) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{
			Topic: string(greeter.NamesTopic), Key: sarama.StringEncoder(n), Value: sarama.StringEncoder(n),
		}); err != nil {
			t.Fatalf("produce %s: %v", n, err)
		}
	}
}

// readGreetings reads n committed records from the greetings topic and
// returns their values by key, in offset order.
func readGreetings(ctx context.Context, t *testing.T, client sarama.Client, n int) map[string][]string {
	t.Helper()
	topic := string(greeter.GreetingsTopic)
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := consumer.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *sarama.ConsumerMessage)
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.AsyncClose()
		go func() {
			for m := range pc.Messages() {
				select {
				case msgs <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	got := map[string][]string{}
	timeout := time.After(20 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case m := <-msgs:
			got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
		case <-timeout:
			t.Fatalf("got %d of %d greetings: %v", i, n, got)
		}
	}
	return got
}

func keys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// waitForLine waits until out contains line, failing early if Run ends.
func waitForLine(t *testing.T, out *kafkatest.SyncBuffer, runErr <-chan error, line string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), line) {
		select {
		case err := <-runErr:
			t.Fatalf("app.Run returned before %q: %v\noutput:\n%s", line, err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line after 20s; output:\n%s", line, out)
		}
	}
}
