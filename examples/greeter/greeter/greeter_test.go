package greeter_test

import (
	"fmt"
	"testing"

	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
)

func TestGreeting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		visits int64
		want   string
	}{
		{"first", 1, "Hello Alice!"},
		{"zero is first", 0, "Hello Alice!"},
		{"second", 2, "Hello again, Alice!"},
		{"third", 3, "Third time is a charm, Alice!"},
		{"fourth", 4, "Happy to see you once again, Alice!"},
		{"fifth", 5, "Hello Alice, for the 5th time!"},
		{"tenth", 10, "Hello Alice, for the 10th time!"},
		{"eleventh", 11, "Hello Alice, for the 11th time!"},
		{"twelfth", 12, "Hello Alice, for the 12th time!"},
		{"thirteenth", 13, "Hello Alice, for the 13th time!"},
		{"twenty-first", 21, "Hello Alice, for the 21st time!"},
		{"twenty-second", 22, "Hello Alice, for the 22nd time!"},
		{"twenty-third", 23, "Hello Alice, for the 23rd time!"},
		{"twenty-fourth", 24, "Hello Alice, for the 24th time!"},
		{"hundredth", 100, "Hello Alice, for the 100th time!"},
		{"hundred-first", 101, "Hello Alice, for the 101st time!"},
		{"hundred-second", 102, "Hello Alice, for the 102nd time!"},
		{"hundred-eleventh", 111, "Hello Alice, for the 111th time!"},
		{"hundred-twelfth", 112, "Hello Alice, for the 112th time!"},
		{"hundred-thirteenth", 113, "Hello Alice, for the 113th time!"},
		{"thousand-and-first", 1001, "Hello Alice, for the 1001st time!"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := greeter.Greeting("Alice", tc.visits); got != tc.want {
				t.Errorf("Greeting(Alice, %d) = %q, want %q", tc.visits, got, tc.want)
			}
		})
	}
}

// TestGreetCountsVisits invokes the function in the functionstest harness,
// which keeps the state between invocations as the runtime does.
func TestGreetCountsVisits(t *testing.T) {
	t.Parallel()
	h := functionstest.New(greeter.Registry(), functionstest.WithTopology(greeter.Topology()))
	alice := functions.Address{Type: greeter.GreetType, ID: "Alice"}
	bob := functions.Address{Type: greeter.GreetType, ID: "Bob"}
	visits := []struct {
		to   functions.Address
		want string
	}{
		{alice, "Hello Alice!"},
		{alice, "Hello again, Alice!"},
		{bob, "Hello Bob!"},
		{alice, "Third time is a charm, Alice!"},
		{alice, "Happy to see you once again, Alice!"},
		{alice, "Hello Alice, for the 5th time!"},
	}
	for i, v := range visits {
		res, err := h.Invoke(v.to, greeter.NameType.Of(v.to.ID))
		if err != nil {
			t.Fatalf("visit %d: %v", i+1, err)
		}
		if len(res.Egress) != 1 || res.Egress[0].Egress != greeter.GreetingsEgress {
			t.Fatalf("visit %d: got egress %+v, want one record to %s", i+1, res.Egress, greeter.GreetingsEgress)
		}
		rec, err := functions.KafkaRecordType.As(res.Egress[0].Message)
		if err != nil {
			t.Fatalf("visit %d: decode egress record: %v", i+1, err)
		}
		if rec.Topic != string(greeter.GreetingsTopic) || rec.Key != v.to.ID || string(rec.Value) != v.want {
			t.Errorf("visit %d: got record {%s %s %q}, want {%s %s %q}", i+1, rec.Topic, rec.Key, rec.Value, greeter.GreetingsTopic, v.to.ID, v.want)
		}
		if len(res.Messages) != 0 {
			t.Errorf("visit %d: got messages %+v, want none", i+1, res.Messages)
		}
	}
	for _, tc := range []struct {
		addr functions.Address
		want int64
	}{{alice, 5}, {bob, 1}} {
		if got, ok := functionstest.StateOf(h, tc.addr, greeter.Visits); !ok || got != tc.want {
			t.Errorf("visits of %s: got %d (set %v), want %d", tc.addr, got, ok, tc.want)
		}
	}
}

func TestTopologyIsValid(t *testing.T) {
	t.Parallel()
	topo := greeter.Topology()
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := greeter.Registry()
	for _, fn := range topo.Functions {
		if _, ok := reg.Lookup(fn); !ok {
			t.Errorf("function type %s is in the topology but not registered", fn)
		}
	}
}

func ExampleGreeting() {
	for visits := int64(1); visits <= 5; visits++ {
		fmt.Println(greeter.Greeting("Alice", visits))
	}
	fmt.Println(greeter.Greeting("Alice", 22))
	// Output:
	// Hello Alice!
	// Hello again, Alice!
	// Third time is a charm, Alice!
	// Happy to see you once again, Alice!
	// Hello Alice, for the 5th time!
	// Hello Alice, for the 22nd time!
}
