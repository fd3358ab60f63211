package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
)

// TestStateGetAndListReadTheGreetersVisits runs the greeter, greets three
// names, and reads their visit counts with `stateloop state`.
func TestStateGetAndListReadTheGreetersVisits(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo, reg := greeter.Build()
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	b := strings.Join(brokers, ",")
	for _, name := range []string{"Alice", "Bob", "Alice", "Albert"} {
		mustCLI(t, "send", "--brokers", b, "--topic", "names", "--key", name, name)
	}
	mustCLI(t, "consume", "--brokers", b, "--topic", "greetings", "-n", "4", "--timeout", "20s")

	got := mustCLI(t, "state", "get", "--brokers", b, "--app", topo.App, "--type", string(greeter.GreetType), "--id", "Alice")
	var one addressState
	if err := json.Unmarshal([]byte(got), &one); err != nil {
		t.Fatalf("state get printed %q: %v", got, err)
	}
	if v := one.State["visits"]; one.ID != "Alice" || v.Type != "io.statefun.types/long" || v.Value != float64(2) {
		t.Errorf("state get Alice = %+v, want visits 2 of type io.statefun.types/long", one)
	}

	got = mustCLI(t, "state", "list", "--brokers", b, "--app", topo.App, "--type", string(greeter.GreetType), "--prefix", "Al")
	seen := map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		var a addressState
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("state list printed %q: %v", line, err)
		}
		seen[a.ID] = a.State["visits"].Value
	}
	if len(seen) != 2 || seen["Alice"] != float64(2) || seen["Albert"] != float64(1) {
		t.Errorf("state list --prefix Al = %v, want Alice 2 and Albert 1", seen)
	}

	r := cli(context.Background(), nil, "state", "get", "--brokers", b, "--app", topo.App, "--type", string(greeter.GreetType), "--id", "Nobody")
	if r.err == nil || !strings.Contains(r.err.Error(), "has no state") {
		t.Errorf("state get of an unknown id: %v, want an error saying it has no state", r.err)
	}
}

// Regression test for issue 10, item 7: `stateloop state get|list` of a
// function type without a table created the table topic with the broker's
// defaults (its view asked for the table's partitions with a metadata
// request that creates missing topics), which the application then
// adopted. A read must create nothing and say that the table is missing.
func TestStateOfATypeWithoutATableCreatesNoTopic(t *testing.T) {
	brokers := kafkatest.StartKfake(t) // with auto topic creation, like Kafka's default
	client := kafkatest.Client(t, brokers)
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	// the application ghost exists (its loop topic does); its type
	// dyn/nobody has never been invoked
	if err := admin.CreateTopic("ghost-loop", &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	b := strings.Join(brokers, ",")
	for _, args := range [][]string{
		{"state", "get", "--brokers", b, "--app", "ghost", "--type", "dyn/nobody", "--id", "x", "--timeout", "5s"},
		{"state", "list", "--brokers", b, "--app", "ghost", "--type", "dyn/nobody", "--timeout", "5s"},
	} {
		r := cli(context.Background(), nil, args...)
		if r.err == nil || !strings.Contains(r.err.Error(), "ghost-dyn_.nobody-table") {
			t.Errorf("stateloop %s: %v, want an error saying the table ghost-dyn_.nobody-table does not exist", strings.Join(args, " "), r.err)
		}
	}
	if topics := kafkatest.Topics(t, client); !slices.Equal(topics, []string{"ghost-loop"}) {
		t.Errorf("topics after reading a missing table: %v, want ghost-loop only", topics)
	}
}
