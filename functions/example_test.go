package functions_test

import (
	"fmt"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
)

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
	h := functionstest.New(reg)
	to := functions.Address{Type: "example/shop", ID: "1"}
	for _, m := range []functions.Message{orderType.Of(order{ID: "o-1"}), functions.StringType.Of("hi"), functions.LongType.Of(3)} {
		if _, err := h.Invoke(to, m); err != nil {
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
	h := functionstest.New(reg)
	a := functions.Address{Type: "example/adder", ID: "a"}
	if err := functionstest.SetState(h, a, total, 10); err != nil {
		fmt.Println(err)
		return
	}
	res, err := h.Invoke(a, functions.LongType.Of(5))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range res.State {
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

// A typed Kafka egress encodes record values with its codec: no
// json.Marshal and no topic string at the call site.
func ExampleKafkaEgress() {
	type receipt struct {
		User  string `json:"user"`
		Items int    `json:"items"`
	}
	receipts := functions.NewKafkaEgress("example/receipts", "receipts", codec.JSON[receipt]())
	checkout := func(ctx functions.Context, items int64) error {
		receipts.Send(ctx, ctx.Self().ID, receipt{User: ctx.Self().ID, Items: int(items)})
		return nil
	}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     "example/checkout",
		Function: functions.Router(functions.Handle(functions.LongType, checkout)),
		Egresses: []functions.TypeName{receipts.ID()},
	})
	h := functionstest.New(reg)
	res, err := h.Invoke(functions.Address{Type: "example/checkout", ID: "alice"}, functions.LongType.Of(3))
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, _ := functions.KafkaRecordType.As(res.Egress[0].Message)
	fmt.Printf("%s: topic %s, key %s, value %s\n", res.Egress[0].Egress, rec.Topic, rec.Key, rec.Value)
	// Output:
	// example/receipts: topic receipts, key alice, value {"user":"alice","items":3}
}
