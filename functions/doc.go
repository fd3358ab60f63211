// Package functions is what a function author imports: the API for writing
// stateful functions that stateloop runs on Kafka.
//
// # Concepts
//
// A function type (a [TypeName] "namespace/name") is code plus declared
// state and declared egresses. An [Address] (type + ID) names one virtual instance of it; every
// address exists and starts with empty state. Functions receive typed
// [Message] values, keep [State] per address, send messages to any address
// (including themselves, so cycles are natural) and send records to
// egresses. Type names and encodings of the built-in types ([StringType],
// [LongType], ...) are StateFun's, so Go functions and remote StateFun SDK
// functions exchange messages.
//
//	var visits = functions.NewState("visits", functions.LongType)
//
//	func greet(ctx functions.Context, name string) error {
//		n, _ := visits.Get(ctx)
//		visits.Set(ctx, n+1)
//		ctx.SendEgress(greetings, functions.KafkaMessage("greetings", name, []byte("Hello "+name+"!")))
//		return nil
//	}
//
//	reg := functions.NewRegistry()
//	err := reg.Register(functions.Spec{
//		Type:     "greeter/greet",
//		Function: functions.Router(functions.Handle(Name, greet)),
//		State:    []functions.StateSpec{visits},
//		Egresses: []functions.TypeName{greetings},
//	})
//
// A [Spec] declares everything a function uses besides messages: its state
// values and the egresses it sends to. Using a state value or sending to
// an egress that the Spec does not declare fails the invocation
// ([ErrUndeclaredState], [ErrUndeclaredEgress]), and the runtime checks at
// start-up that the application's topology has every declared egress and
// lists every registered type, so such mistakes show before any message
// is processed.
//
// # Lifecycle
//
// The runtime calls [Function.Invoke] once per message, one message at a
// time per address. Effects (state changes, sends, egress records) are
// recorded, not performed, and applied together only when Invoke returns
// nil; the runtime commits them in one Kafka transaction with the input
// that caused them, so each takes effect exactly once.
//
// # Errors
//
// An error returned by Invoke, or a recovered panic, fails the invocation:
// its effects are dropped, it is retried, and then the message goes to the
// application's dead-letter topic. [Permanent] skips the retries. State that
// does not decode fails the invocation before the function runs with a
// *[DecodeError].
//
// # Concurrency
//
// A [Context] belongs to one invocation and one goroutine. [Registry],
// [Type] and [State] values are safe for concurrent use.
//
// # Tests and runtimes
//
// Package functions/functionstest runs functions in memory, for unit
// tests: one function at a time (Harness), or the whole application with
// its ingresses, egresses and timers (TopologyDriver). This package holds only what function code uses: a runtime (the
// stateloop processor, functionstest) invokes functions and applies their
// effects through package functions/driver, which function code never
// needs.
package functions
