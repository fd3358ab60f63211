package processor

import (
	"strings"
	"testing"
)

// brokersFake is a fakeKafka with a broker count that records the
// replication factor of every topic it creates.
type brokersFake struct {
	*fakeKafka
	brokers int
	factors map[string]int16
}

func (b *brokersFake) brokerCount() (int, error) { return b.brokers, nil }

func (b *brokersFake) createTopic(name string, partitions int32, replication int16, configs map[string]string) error {
	b.factors[name] = replication
	return b.fakeKafka.createTopic(name, partitions, replication, configs)
}

func newBrokersFake(brokers int) *brokersFake {
	return &brokersFake{fakeKafka: newFakeKafka(), brokers: brokers, factors: map[string]int16{}}
}

func TestReplicationAutoIsThreeAndTwoOnThreeOrMoreBrokersAndOneOnFewer(t *testing.T) {
	for _, c := range []struct {
		brokers    int
		factor     int16
		minISR     int
		wantFactor int16
		wantMinISR int
	}{
		{brokers: 1, wantFactor: 1, wantMinISR: 1},
		{brokers: 2, wantFactor: 1, wantMinISR: 1},
		{brokers: 3, wantFactor: 3, wantMinISR: 2},
		{brokers: 5, wantFactor: 3, wantMinISR: 2},
		{brokers: 0, wantFactor: ReplicationBrokerDefault, wantMinISR: 0},            // unknown: the broker decides
		{brokers: 3, factor: 2, wantFactor: 2, wantMinISR: 1},                        // min ISR follows the factor
		{brokers: 5, factor: 5, minISR: 3, wantFactor: 5, wantMinISR: 3},             // as given
		{brokers: 3, factor: -1, wantFactor: ReplicationBrokerDefault},               // broker default, no min ISR
		{brokers: 3, factor: -1, minISR: 2, wantFactor: -1, wantMinISR: 2},           // min ISR alone
		{brokers: 3, minISR: ReplicationBrokerDefault, wantFactor: 3, wantMinISR: 0}, // broker's min ISR
	} {
		r, err := resolveReplication(c.factor, c.minISR, c.brokers)
		if err != nil {
			t.Errorf("%+v: %v", c, err)
			continue
		}
		if r.factor != c.wantFactor || r.minISR != c.wantMinISR {
			t.Errorf("brokers %d, factor %d, min ISR %d: got factor %d, min ISR %d; want %d, %d",
				c.brokers, c.factor, c.minISR, r.factor, r.minISR, c.wantFactor, c.wantMinISR)
		}
	}
}

func TestReplicationFactorAboveTheBrokerCountIsRefusedAtStart(t *testing.T) {
	topo, reg := unitCounterApp()
	p, err := New([]string{"fake:9092"}, topo, reg, WithReplicationFactor(3))
	if err != nil {
		t.Fatal(err)
	}
	fk := newBrokersFake(1)
	err = p.ensureTopics(fk)
	if err == nil || !strings.Contains(err.Error(), "replication factor 3 is more than the 1 broker(s)") {
		t.Fatalf("ensureTopics on 1 broker with replication factor 3: %v; want it refused", err)
	}
	if len(fk.factors) != 0 {
		t.Fatalf("created %d topics before refusing: %v", len(fk.factors), fk.factors)
	}
}

func TestMinInsyncReplicasAboveTheReplicationFactorIsRefused(t *testing.T) {
	topo, reg := unitCounterApp()
	_, err := New([]string{"fake:9092"}, topo, reg, WithReplicationFactor(2), WithMinInsyncReplicas(3), WithCommitCount(0))
	if err == nil || !strings.Contains(err.Error(), "min.insync.replicas 3 is more than the replication factor 2") ||
		!strings.Contains(err.Error(), "commit count 0") {
		t.Fatalf("New: %v; want min.insync.replicas 3 over factor 2 refused, with the other problem", err)
	}
	// ReplicationAuto resolves to 1 on one broker: a min ISR of 2 is refused then.
	p, err := New([]string{"fake:9092"}, topo, reg, WithMinInsyncReplicas(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ensureTopics(newBrokersFake(1)); err == nil || !strings.Contains(err.Error(), "min.insync.replicas 2 is more than the replication factor 1") {
		t.Fatalf("ensureTopics on 1 broker with min ISR 2: %v; want it refused", err)
	}
	for _, bad := range []Option{WithReplicationFactor(-2), WithMinInsyncReplicas(-5)} {
		if _, err := New([]string{"fake:9092"}, topo, reg, bad); err == nil {
			t.Errorf("New accepted a negative count other than -1")
		}
	}
}

func TestCreatedTopicsGetTheReplicationAndMinInsyncReplicasOfTheCluster(t *testing.T) {
	topo, reg := unitCounterApp()
	for _, c := range []struct {
		brokers    int
		opts       []Option
		wantFactor int16
		wantMinISR string
	}{
		{brokers: 3, wantFactor: 3, wantMinISR: "2"},
		{brokers: 1, wantFactor: 1, wantMinISR: "1"},
		{brokers: 3, opts: []Option{WithReplicationFactor(2)}, wantFactor: 2, wantMinISR: "1"},
		{brokers: 3, opts: []Option{WithReplicationFactor(-1), WithMinInsyncReplicas(-1)}, wantFactor: -1, wantMinISR: ""},
	} {
		p, err := New([]string{"fake:9092"}, topo, reg, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		fk := newBrokersFake(c.brokers)
		if err := p.ensureTopics(fk); err != nil {
			t.Fatal(err)
		}
		if len(fk.factors) < 3 {
			t.Fatalf("only %d topics created: %v", len(fk.factors), fk.factors)
		}
		infos, _ := fk.topics()
		for name, f := range fk.factors {
			if f != c.wantFactor {
				t.Errorf("%d brokers: topic %s created with replication factor %d, want %d", c.brokers, name, f, c.wantFactor)
			}
			if got := infos[name].Configs["min.insync.replicas"]; got != c.wantMinISR {
				t.Errorf("%d brokers: topic %s created with min.insync.replicas %q, want %q", c.brokers, name, got, c.wantMinISR)
			}
		}
	}
}

// TestCreatedCompactedTopicsRollTheirSegmentsHourly: the log cleaner never
// compacts the active segment, so the compacted topics stateloop creates
// (tables, timers, idempotency keys, positions, inbox) roll it hourly, and
// a rebuild reads about the addresses plus an hour of writes rather than
// up to a week's; the topics of messages keep the broker's segments.
func TestCreatedCompactedTopicsRollTheirSegmentsHourly(t *testing.T) {
	topo, reg := unitCounterApp()
	p, err := New([]string{"fake:9092"}, topo, reg)
	if err != nil {
		t.Fatal(err)
	}
	fk := newBrokersFake(1)
	if err := p.ensureTopics(fk); err != nil {
		t.Fatal(err)
	}
	infos, _ := fk.topics()
	compacted := 0
	for name := range fk.factors {
		c := infos[name].Configs
		if strings.Contains(c["cleanup.policy"], "compact") {
			compacted++
			if c["segment.ms"] != "3600000" {
				t.Errorf("compacted topic %s created with segment.ms %q, want 3600000 (an hour)", name, c["segment.ms"])
			}
		} else if v, ok := c["segment.ms"]; ok {
			t.Errorf("topic %s (cleanup.policy %q) created with segment.ms %q, want the broker's", name, c["cleanup.policy"], v)
		}
	}
	if compacted < 5 {
		t.Errorf("%d compacted topics created, want the table, timers, idempotency, positions and inbox topics: %v", compacted, infos)
	}
}
