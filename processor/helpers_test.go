package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// externalBrokers, when set (by the integration build), gives the brokers
// of an Apache Kafka that the tests share.
var externalBrokers func(testing.TB) []string

// testBroker returns the brokers a test runs on and its application name:
// an in-process broker of its own by default; with the integration build
// tag, the Apache Kafka at KAFKA_BROKERS, with app made unique per run so
// that tests and runs on one broker never share a topic or a group.
func testBroker(t testing.TB, app string) ([]string, string) {
	t.Helper()
	if externalBrokers != nil {
		return externalBrokers(t), uniqueApp(app)
	}
	return kafkatest.StartKfake(t), app
}

func uniqueApp(base string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return base + "-" + hex.EncodeToString(b[:])
}

func testClient(t testing.TB, brokers []string) sarama.Client {
	t.Helper()
	return kafkatest.Client(t, brokers)
}

// produce writes plain (non-transactional) records.
func produce(t testing.TB, client sarama.Client, topic string, recs ...[2][]byte) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(r[1])}
		if r[0] != nil {
			msgs[i].Key = sarama.ByteEncoder(r[0])
		}
	}
	if err := sp.SendMessages(msgs); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

type topicRecord struct {
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	Headers   map[string]string
}

// readTopic returns every committed record of a topic up to its last stable
// offsets, with headers.
func readTopic(t testing.TB, client sarama.Client, topic string) []topicRecord {
	t.Helper()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions %s: %v", topic, err)
	}
	var out []topicRecord
	for _, p := range parts {
		start, _, lso, err := partitionEnds(client, topic, p)
		if err != nil {
			t.Fatalf("ends %s/%d: %v", topic, p, err)
		}
		_, err = readCommitted(context.Background(), client, topic, p, start, lso, func(r committedRecord) error {
			rec := topicRecord{Partition: p, Offset: r.Offset, Value: r.Value, Headers: map[string]string{}}
			if r.Key != nil {
				rec.Key = string(r.Key)
			}
			for _, h := range r.Headers {
				rec.Headers[string(h.Key)] = string(h.Value)
			}
			out = append(out, rec)
			return nil
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var stuck []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "stateloop/processor.(*") {
			stuck = append(stuck, g)
		}
	}
	t.Fatalf("timed out after %v waiting for %s; last state: %s\nprocessor goroutines:\n%s", timeout, what, last, strings.Join(stuck, "\n\n"))
}

// runProcessor runs p until the test ends or stop is called.
func runProcessor(t testing.TB, p *Processor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.Run(ctx); err != nil {
			t.Errorf("processor run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func key(i int) []byte { return []byte(fmt.Sprintf("k%d", i)) }

// testLogger writes the processor's log to the test log, shown on failure
// or with -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
