package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stateloop/stateloop/internal/kafkatest"
)

// TestRunWaitsForTopicsTheClusterMakesKnownLate is a regression test of
// issue 10 (5): on Apache Kafka the first start exited right after creating
// its topics, with "Request was for a topic or partition that does not
// exist on this broker", because Kafka makes a new topic known a while
// after it has confirmed its creation, and the runtime gave up after
// sarama's metadata retries (10 x 200 ms). Here the broker keeps new topics
// unknown for 3 s: Run must wait, then work.
func TestRunWaitsForTopicsTheClusterMakesKnownLate(t *testing.T) {
	const lag = 3 * time.Second
	c := kafkatest.StartKfakeCluster(t)
	kafkatest.LateNewTopics(c, lag)
	brokers := c.ListenAddrs()
	topo, reg := counterApp("late")
	p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !p.Stats().Ready {
		select {
		case err := <-done:
			done <- nil
			t.Fatalf("Run returned %v after %v instead of waiting for its new topics", err, time.Since(start).Round(time.Millisecond))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s: %+v", p.Stats())
		}
	}
	if took := time.Since(start); took < lag {
		t.Errorf("ready after %v, before the cluster made its topics known (%v)", took, lag)
	}
	client := testClient(t, brokers)
	produce(t, client, "late-words", [2][]byte{key(1), []byte("w")}, [2][]byte{key(1), []byte("w")})
	waitFor(t, 10*time.Second, "2 egress records", func() (bool, string) {
		n := len(readTopic(t, client, "late-out"))
		return n >= 2, fmt.Sprintf("%d records, stats %+v", n, p.Stats())
	})
}
