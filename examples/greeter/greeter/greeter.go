package greeter

import (
	"strconv"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// App is the application's name: its consumer group and the prefix of its
// internal topics.
const App = "greeter"

// The Kafka topics of the application.
const (
	// NamesTopic is the ingress: one record per visit, key = value = name.
	NamesTopic topology.Topic = "names"
	// GreetingsTopic receives one greeting per visit, keyed by the name.
	GreetingsTopic topology.Topic = "greetings"
)

// GreetType is the function type that greets; its id is the name.
const GreetType functions.TypeName = "greeter/greet"

// GreetingsEgress is the egress that writes to GreetingsTopic.
const GreetingsEgress functions.TypeName = "greeter/greetings"

// NameType is the type of the messages to GreetType: a name as plain UTF-8.
var NameType = functions.NewType("greeter/name", codec.Text())

// Visits is the state of a GreetType address: how often the name was seen.
var Visits = functions.NewState("visits", functions.LongType)

// Greeting returns the greeting for name on its visits-th visit. A count
// below 1 is treated as the first visit.
func Greeting(name string, visits int64) string {
	switch {
	case visits <= 1:
		return "Hello " + name + "!"
	case visits == 2:
		return "Hello again, " + name + "!"
	case visits == 3:
		return "Third time is a charm, " + name + "!"
	case visits == 4:
		return "Happy to see you once again, " + name + "!"
	default:
		return "Hello " + name + ", for the " + ordinal(visits) + " time!"
	}
}

// ordinal writes n as an English ordinal: 1st, 2nd, 3rd, 4th, 11th, 21st.
func ordinal(n int64) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.FormatInt(n, 10) + suffix
}

// greet handles one visit.
func greet(ctx functions.Context, name string) error {
	n, _ := Visits.Get(ctx)
	n++
	Visits.Set(ctx, n)
	greeting := Greeting(name, n)
	ctx.SendEgress(GreetingsEgress, functions.KafkaMessage(string(GreetingsTopic), ctx.Self().ID, []byte(greeting)))
	return nil
}

// Topology returns the application's topology. It leaves the partition
// count unset, so the --partitions flag decides it.
func Topology() topology.Topology {
	return topology.Topology{
		App:       App,
		Functions: []functions.TypeName{GreetType},
		Ingresses: []topology.Ingress{{
			Topic:     NamesTopic,
			ValueType: NameType.Name(),
			Targets:   []functions.TypeName{GreetType},
		}},
		Egresses: []topology.Egress{{
			ID:     GreetingsEgress,
			Topics: []topology.Topic{GreetingsTopic},
		}},
	}
}

// Registry returns a new registry with the function type GreetType.
func Registry() *functions.Registry {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     GreetType,
		Function: functions.Router(functions.Handle(NameType, greet)),
		State:    []functions.StateSpec{Visits},
		Egresses: []functions.TypeName{GreetingsEgress},
	})
	return reg
}

// Build returns the application: [Topology] and [Registry].
func Build() (topology.Topology, *functions.Registry) {
	return Topology(), Registry()
}
