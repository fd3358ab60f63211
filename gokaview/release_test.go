package gokaview_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// Regression test for issue 10, item 7: NewView asked Kafka for the
// partitions of the table with a metadata request that creates missing
// topics (sarama's default), so a view of a function type without a table
// created the table with the broker's defaults: the wrong partition count
// and no compaction.
func TestNewViewOfAMissingTableCreatesNothing(t *testing.T) {
	brokers := kafkatest.StartKfake(t) // with auto topic creation, like Kafka's default
	client := kafkatest.Client(t, brokers)
	topo := topology.Topology{App: "missing", Partitions: 4}
	fn := functions.TypeName("dyn/nobody")
	before := kafkatest.Topics(t, client)
	v, err := gokaview.NewView(brokers, topo, fn, goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if !errors.Is(err, gokaview.ErrNoTable) || !strings.Contains(err.Error(), string(topo.TableTopic(fn))) {
		t.Errorf("NewView of the missing table %s: %v, %v; want an error wrapping ErrNoTable that names the table", topo.TableTopic(fn), v, err)
	}
	if got := kafkatest.Topics(t, client); !slices.Equal(got, before) {
		t.Errorf("topics after NewView: %v, want those before: %v", got, before)
	}
}

// Regression test for issue 10, item 7: goka's View never closes the
// consumer and the topic manager it builds, so every view that had run
// kept its Kafka clients, their connections and goroutines, for good.
// Once Run has returned, a view must hold nothing.
func TestViewReleasesItsClientsWhenRunReturns(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	topo := topology.Topology{App: "release", Partitions: 4}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	compact := "compact"
	for _, fn := range []functions.TypeName{"test/a", "test/b", "test/c"} {
		if err := admin.CreateTopic(string(topo.TableTopic(fn)), &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1,
			ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false); err != nil {
			t.Fatal(err)
		}
	}
	base := runtime.NumGoroutine()
	for _, fn := range []functions.TypeName{"test/a", "test/b", "test/c"} {
		v, err := gokaview.NewView(brokers, topo, fn, goka.WithViewStorageBuilder(storage.MemoryBuilder()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- v.Run(ctx) }()
		select {
		case <-v.WaitRunning():
		case <-time.After(30 * time.Second):
			t.Fatalf("view of %s not running after 30 s", fn)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("view of %s: Run: %v", fn, err)
		}
	}
	const slack = 10
	deadline := time.Now().Add(20 * time.Second)
	n := runtime.NumGoroutine()
	for n > base+slack && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+slack {
		t.Errorf("after three views ran and stopped: %d goroutines, want at most %d (%d before)", n, base+slack, base)
	}
}
