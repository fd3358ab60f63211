package main

import (
	"strconv"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// App is the stateloop application's name: its consumer group and the
// prefix of its topics (goka-interop-loop, goka-interop-…-table).
const App = "goka-interop"

// CounterType is the function type that adds up the amounts sent to each
// id. Its state is the table goka-interop-example_.counter-table, the group
// table of the Goka group goka-interop-example_.counter.
const CounterType functions.TypeName = "example/counter"

// TotalsEgress writes every new total to TotalsTopic, keyed by the id,
// the total as decimal text.
const TotalsEgress functions.TypeName = "example/totals"

// TotalsTopic is the egress topic a Goka processor reads.
const TotalsTopic topology.Topic = "goka-interop-totals"

// Amount is the type of the messages to CounterType: StateFun's long, so
// any client that knows the type name io.statefun.types/long can send it.
var Amount = functions.LongType

// Total is the state of a CounterType address.
var Total = functions.NewState("total", functions.LongType)

// add handles one amount.
func add(ctx functions.Context, n int64) error {
	total, _ := Total.Get(ctx)
	total += n
	Total.Set(ctx, total)
	ctx.SendEgress(TotalsEgress, functions.KafkaMessage(string(TotalsTopic), ctx.Self().ID, []byte(strconv.FormatInt(total, 10))))
	return nil
}

// Topology returns the stateloop application. It has no ingress: a Goka
// emitter writes to its loop topic directly.
func Topology() topology.Topology {
	return topology.Topology{
		App:       App,
		Functions: []functions.TypeName{CounterType},
		Egresses:  []topology.Egress{{ID: TotalsEgress, Topics: []topology.Topic{TotalsTopic}}},
	}
}

// Registry returns a registry with CounterType.
func Registry() *functions.Registry {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     CounterType,
		Function: functions.Router(functions.Handle(Amount, add)),
		State:    []functions.StateSpec{Total},
		Egresses: []functions.TypeName{TotalsEgress},
	})
	return reg
}
