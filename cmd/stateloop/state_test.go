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
	"github.com/stateloop/stateloop/internal/opstest/opsapp"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// TestStateGetAndListReadTheGreetersVisits runs the greeter, greets three
// names, and reads their visit counts with `stateloop state`.
func TestStateGetAndListReadTheGreetersVisits(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo := runGreeter(t, brokers)
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

// runGreeter runs the greeter application on brokers until the test ends,
// once it has created its topics.
func runGreeter(t *testing.T, brokers []string) topology.Topology {
	t.Helper()
	topo, reg := greeter.Build()
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	opsapp.Run(t, p)
	return topo
}

// TestStateNamesAWrongApplicationOrType: regression for issue 10 item 14,
// `state get --app` with a name no application has said the address "has
// no state", as if the application existed. It must say that there is no
// such application and which ones there are; a function type the
// application does not have likewise.
func TestStateNamesAWrongApplicationOrType(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	runGreeter(t, brokers)
	b := strings.Join(brokers, ",")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"get, wrong app", []string{"get", "--app", "greter", "--type", "greeter/greet", "--id", "Alice"},
			[]string{"no application greter at " + b, "no topic greter-loop", "applications there: greeter"}},
		{"list, wrong app", []string{"list", "--app", "greter", "--type", "greeter/greet"},
			[]string{"no application greter at " + b, "applications there: greeter"}},
		{"get, wrong type", []string{"get", "--app", "greeter", "--type", "greeter/gret", "--id", "Alice"},
			[]string{"application greeter has no function type greeter/gret", "its function types: greeter/greet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"state"}, tc.args...)
			r := cli(context.Background(), nil, append(args, "--brokers", b, "--timeout", "20s")...)
			if r.err == nil {
				t.Fatalf("stateloop %s: no error; printed %q", strings.Join(args, " "), r.out)
			}
			t.Logf("stateloop %s: %v", strings.Join(args, " "), r.err)
			for _, w := range tc.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("stateloop %s: got %q, want it to say %q", strings.Join(args, " "), r.err, w)
				}
			}
		})
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
