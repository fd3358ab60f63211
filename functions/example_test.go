package functions_test

import (
	"context"
	"fmt"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
)

// A runtime hands Invoke the stored state of the address and applies the
// effects it returns; this is what the processor does for each record.
func ExampleRegistry_Invoke() {
	visits := functions.NewState("visits", functions.LongType)
	greet := func(ctx functions.Context, name string) error {
		n, _ := visits.Get(ctx)
		visits.Set(ctx, n+1)
		ctx.SendEgress("example/greetings", functions.KafkaMessage("greetings", name, fmt.Appendf(nil, "Hello %s, visit %d", name, n+1)))
		return nil
	}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     "example/greeter",
		Function: functions.Router(functions.Handle(functions.StringType, greet)),
		State:    []functions.StateSpec{visits},
		Egresses: []functions.TypeName{"example/greetings"},
	})

	stored := map[string]functions.StoredValue{}
	for range 2 {
		effects, err := reg.Invoke(context.Background(), functions.Invocation{
			Target:  functions.Address{Type: "example/greeter", ID: "bob"},
			Message: functions.StringType.Of("Bob"),
			State:   stored,
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, c := range effects.State {
			stored[c.Name] = c.Value
		}
		for _, e := range effects.Egress {
			rec, _ := functions.KafkaRecordType.As(e.Message)
			fmt.Printf("%s %s: %s\n", e.Egress, rec.Topic, rec.Value)
		}
	}
	// Output:
	// example/greetings greetings: Hello Bob, visit 1
	// example/greetings greetings: Hello Bob, visit 2
}

// A Router decodes each message with the type of its handler.
func ExampleRouter() {
	type order struct{ ID string }
	orderType := functions.NewType("example/order", codec.JSON[order]())
	fn := functions.Router(
		functions.Handle(orderType, func(ctx functions.Context, o order) error {
			fmt.Println("order", o.ID)
			return nil
		}),
		functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			fmt.Println("note", s)
			return nil
		}),
	)
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "example/shop", Function: fn})
	to := functions.Address{Type: "example/shop", ID: "1"}
	for _, m := range []functions.Message{orderType.Of(order{ID: "o-1"}), functions.StringType.Of("hi"), functions.LongType.Of(3)} {
		if _, err := reg.Invoke(context.Background(), functions.Invocation{Target: to, Message: m}); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// order o-1
	// note hi
	// functions: invoke example/shop/1: functions: unhandled message type io.statefun.types/long
}

// State is read and changed through the Context of an invocation; the
// changes come back as effects, in declaration order, only if the function
// succeeds.
func ExampleState() {
	total := functions.NewState("total", functions.LongType)
	last := functions.NewState("last", functions.StringType)
	add := functions.FunctionFunc(func(ctx functions.Context, msg functions.Message) error {
		n, err := functions.LongType.As(msg)
		if err != nil {
			return err
		}
		sum, _ := total.Get(ctx)
		total.Set(ctx, sum+n)
		sum, _ = total.Get(ctx) // sees the new value
		fmt.Println("total is now", sum)
		last.Clear(ctx)
		return nil
	})
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "example/adder", Function: add, State: []functions.StateSpec{total, last}})
	effects, err := reg.Invoke(context.Background(), functions.Invocation{
		Target:  functions.Address{Type: "example/adder", ID: "a"},
		Message: functions.LongType.Of(5),
		State: map[string]functions.StoredValue{
			"total": {TypeName: functions.LongType.Name(), Value: functions.LongType.Of(10).Bytes()},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range effects.State {
		if c.Deleted {
			fmt.Println(c.Name, "deleted")
			continue
		}
		fmt.Printf("%s = % x\n", c.Name, c.Value.Value)
	}
	// Output:
	// total is now 15
	// total = 09 0f 00 00 00 00 00 00 00
	// last deleted
}
