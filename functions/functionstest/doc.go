// Package functionstest runs stateful functions in memory, without Kafka,
// for unit tests, as net/http/httptest does for HTTP handlers.
//
// A [Harness] holds the state of every address and records the messages
// and egress records that functions send. It calls [functions.Registry.Invoke]
// exactly as the runtime does and applies the effects only when the
// invocation succeeds, so a function behaves the same here as in
// production:
//
//	func TestGreeter(t *testing.T) {
//		reg := functions.NewRegistry()
//		reg.MustRegister(greeter.Spec)
//		h := functionstest.New(reg)
//		bob := functions.Address{Type: "example/greeter", ID: "bob"}
//
//		res, err := h.Invoke(bob, functions.StringType.Of("Bob"))
//		if err != nil {
//			t.Fatal(err)
//		}
//		rec, err := functions.KafkaRecordType.As(res.Egress[0].Message)
//		// check rec.Topic, rec.Key, rec.Value ...
//
//		if n, _ := functionstest.StateOf(h, bob, greeter.Visits); n != 1 {
//			t.Errorf("visits: got %d, want 1", n)
//		}
//	}
//
// [WithTopology] checks the registry against the application's topology,
// as the runtime does when it starts: New panics, listing every function
// type the topology lacks and every declared egress it does not have.
//
//	h := functionstest.New(greeter.Registry(), functionstest.WithTopology(greeter.Topology()))
//
// A function that sends to an egress its Spec does not declare fails here
// as in the runtime, with or without a topology.
//
// # Conversations between functions
//
// [Harness.Invoke] runs one function; the messages it sends are recorded,
// not delivered. [Harness.Run] delivers them: it runs the first invocation,
// then every message sent to a registered function type, in the order sent
// (breadth first), until there are none left. Its limit on the number of
// invocations stops functions that never stop messaging each other.
//
// Delayed messages sent during Run wait for the clock, like all others.
//
// # Time
//
// A Harness has a fake clock that starts at [Epoch]. Delayed messages
// (ctx.SendAfter) wait in [Harness.Pending] until [Harness.Advance] moves
// the clock past their due time; then they are delivered, with their
// sender as caller, in due order. Cancellation tokens behave as in the
// runtime: they belong to the sender, a new message with a waiting token
// replaces the old one, and cancelling an unknown token does nothing.
// State declared with ExpireAfterWrite or ExpireAfterCall expires on the
// same clock: an invocation or [StateOf] after its time finds it absent.
//
// # State
//
// Every address starts with empty state. [SetState] seeds a value before a
// test and [StateOf] reads one after. Stored values are kept as bytes, as
// the runtime keeps them, so a value must survive its codec to be seen by
// the next invocation.
//
// A Harness is safe for concurrent use, but the order in which concurrent
// invocations of one address see each other's state is undefined.
package functionstest
