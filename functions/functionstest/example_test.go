package functionstest_test

import (
	"fmt"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
	"github.com/stateloop/stateloop/topology"
)

var visits = functions.NewState("visits", functions.LongType)

func greet(ctx functions.Context, name string) error {
	n, _ := visits.Get(ctx)
	visits.Set(ctx, n+1)
	ctx.SendEgress("example/greetings", functions.KafkaMessage("greetings", name, fmt.Appendf(nil, "Hello %s! Visit %d.", name, n+1)))
	return nil
}

// A test invokes a function, then checks its egress records and state.
// WithTopology checks the registry against the application's topology
// first, as the runtime does when it starts.
func Example() {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     "example/greeter",
		Function: functions.Router(functions.Handle(functions.StringType, greet)),
		State:    []functions.StateSpec{visits},
		Egresses: []functions.TypeName{"example/greetings"},
	})
	topo := topology.Topology{
		App:       "example",
		Functions: []functions.TypeName{"example/greeter"},
		Egresses:  []topology.Egress{{ID: "example/greetings", Topics: []topology.Topic{"greetings"}}},
	}
	h := functionstest.New(reg, functionstest.WithTopology(topo))
	bob := functions.Address{Type: "example/greeter", ID: "bob"}

	for range 2 {
		res, err := h.Invoke(bob, functions.StringType.Of("Bob"))
		if err != nil {
			fmt.Println(err)
			return
		}
		rec, err := functions.KafkaRecordType.As(res.Egress[0].Message)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s key=%s: %s\n", rec.Topic, rec.Key, rec.Value)
	}
	n, ok := functionstest.StateOf(h, bob, visits)
	fmt.Println("visits:", n, ok)
	fmt.Println("egress records so far:", len(h.Egress()))
	// Output:
	// greetings key=Bob: Hello Bob! Visit 1.
	// greetings key=Bob: Hello Bob! Visit 2.
	// visits: 2 true
	// egress records so far: 2
}

// Run delivers the messages functions send each other, here a ping-pong
// between two functions that stops when the count reaches zero.
func ExampleHarness_Run() {
	reg := functions.NewRegistry()
	bounce := func(peer functions.TypeName) functions.Function {
		return functions.Router(functions.Handle(functions.LongType, func(ctx functions.Context, n int64) error {
			caller, _ := ctx.Caller()
			fmt.Printf("%s got %d from %q\n", ctx.Self().Type, n, caller.Type)
			if n > 0 {
				ctx.Send(functions.Address{Type: peer, ID: ctx.Self().ID}, functions.LongType.Of(n-1))
			}
			return nil
		}))
	}
	reg.MustRegister(functions.Spec{Type: "example/ping", Function: bounce("example/pong")})
	reg.MustRegister(functions.Spec{Type: "example/pong", Function: bounce("example/ping")})
	h := functionstest.New(reg)

	ping := functions.Address{Type: "example/ping", ID: "1"}
	if err := h.Run(ping, functions.LongType.Of(2), 10); err != nil {
		fmt.Println(err)
	}
	err := h.Run(ping, functions.LongType.Of(100), 2)
	fmt.Println(err)
	// Output:
	// example/ping got 2 from ""
	// example/pong got 1 from "example/ping"
	// example/ping got 0 from "example/pong"
	// example/ping got 100 from ""
	// example/pong got 99 from "example/ping"
	// functionstest: too many invocations: stopped after 2 with 1 message(s) undelivered, the next to example/ping/1
}

// SetState seeds state before an invocation.
func ExampleSetState() {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     "example/greeter",
		Function: functions.Router(functions.Handle(functions.StringType, greet)),
		State:    []functions.StateSpec{visits},
		Egresses: []functions.TypeName{"example/greetings"},
	})
	h := functionstest.New(reg)
	bob := functions.Address{Type: "example/greeter", ID: "bob"}
	if err := functionstest.SetState(h, bob, visits, 41); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := h.Invoke(bob, functions.StringType.Of("Bob")); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := functionstest.StateOf(h, bob, visits)
	fmt.Println(n)
	// Output:
	// 42
}
