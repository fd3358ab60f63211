package functionstest_test

import (
	"fmt"
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
	"github.com/stateloop/stateloop/topology"
)

// An order application: JSON orders on the topic orders go, by their
// field "customer", to the customer's function, which asks the warehouse
// to ship and writes a confirmation once the warehouse replies. A customer
// who has not ordered for a day gets a reminder.
type order struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
}

var (
	orderType   = functions.NewType("example/order", codec.JSON[order]())
	shipType    = functions.NewType("example/ship", codec.Text())
	shippedType = functions.NewType("example/shipped", codec.Text())
	remindType  = functions.NewType("example/remind", codec.Text())

	confirmations = functions.NewKafkaEgress("example/confirmations", "confirmations", codec.Text())
	ordered       = functions.NewState("ordered", functions.LongType)
)

func customer() functions.Function {
	return functions.Router(
		functions.Handle(orderType, func(ctx functions.Context, o order) error {
			n, _ := ordered.Get(ctx)
			ordered.Set(ctx, n+1)
			ctx.Send(functions.Address{Type: "example/warehouse", ID: o.Item}, shipType.Of(o.Customer))
			ctx.SendAfterWithToken(24*time.Hour, "remind", ctx.Self(), remindType.Of("we miss you"))
			return nil
		}),
		functions.Handle(shippedType, func(ctx functions.Context, item string) error {
			confirmations.Send(ctx, ctx.Self().ID, item+" is on its way")
			return nil
		}),
		functions.Handle(remindType, func(ctx functions.Context, text string) error {
			confirmations.Send(ctx, ctx.Self().ID, text)
			return nil
		}),
	)
}

func warehouse() functions.Function {
	return functions.Router(functions.Handle(shipType, func(ctx functions.Context, _ string) error {
		ctx.Reply(shippedType.Of(ctx.Self().ID))
		return nil
	}))
}

func orderApp() (topology.Topology, *functions.Registry) {
	topo := topology.Topology{
		App:       "example",
		Functions: []functions.TypeName{"example/customer", "example/warehouse"},
		Ingresses: []topology.Ingress{{
			Topic:     "orders",
			ValueType: orderType.Name(),
			Router:    topology.JSONFieldRouter("customer", "example/customer"),
		}},
		Egresses: []topology.Egress{{ID: confirmations.ID(), Topics: []topology.Topic{topology.Topic(confirmations.Topic())}}},
	}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "example/customer", Function: customer(), State: []functions.StateSpec{ordered},
		Egresses: []functions.TypeName{confirmations.ID()}})
	reg.MustRegister(functions.Spec{Type: "example/warehouse", Function: warehouse()})
	return topo, reg
}

// A TopologyDriver runs the whole application: records piped into an
// ingress topic go through the router and every function they reach, and
// the egress records come out by topic. Delayed messages wait for
// Advance.
func ExampleTopologyDriver() {
	d, err := functionstest.NewTopologyDriver(orderApp())
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := d.Pipe("orders", "", []byte(`{"customer":"ann","item":"socks"}`)); err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range d.ReadRecords("confirmations") {
		fmt.Printf("%s %s: %s\n", r.Topic, r.Key, r.Value)
	}
	n, _ := functionstest.StateOf(d, functions.Address{Type: "example/customer", ID: "ann"}, ordered)
	fmt.Println("orders of ann:", n)

	if err := d.Advance(24 * time.Hour); err != nil {
		fmt.Println(err)
		return
	}
	texts, _ := functionstest.ReadValues(d, "confirmations", confirmations.Codec())
	fmt.Println("a day later:", texts)

	// a record the router cannot route is a dead letter, as in the runtime
	err = d.Pipe("orders", "", []byte(`{"item":"hat"}`))
	fmt.Println(err)
	// Output:
	// confirmations ann: socks is on its way
	// orders of ann: 1
	// a day later: [we miss you]
	// functionstest: dead letter: record orders/0/1: topology: ingress router failed: route by JSON field "customer": no field "customer" in the record value
}

// Request sends a message as the HTTP listener does for a request with
// ?wait=, and returns the reply.
func ExampleTopologyDriver_Request() {
	d, err := functionstest.NewTopologyDriver(orderApp())
	if err != nil {
		fmt.Println(err)
		return
	}
	reply, err := d.Request(functions.Address{Type: "example/warehouse", ID: "socks"}, shipType.Of("ann"))
	if err != nil {
		fmt.Println(err)
		return
	}
	item, _ := shippedType.As(reply)
	fmt.Println(reply.TypeName(), item)
	// Output:
	// example/shipped socks
}
