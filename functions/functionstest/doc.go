// Package functionstest runs stateful functions in memory, without Kafka,
// for unit tests, as net/http/httptest does for HTTP handlers.
//
// A [Harness] holds the state of every address and records the messages
// and egress records that functions send. It runs functions as the runtime
// does, through package functions/driver: it invokes them with
// [driver.Invoke], applies the effects only when the invocation succeeds,
// and changes state with [driver.ApplyState], the runtime's own rules, so
// a function behaves the same here as in production:
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
// # A whole application
//
// A [TopologyDriver] is to an application what a Harness is to a
// function, and what Kafka Streams' TopologyTestDriver is to a topology:
// it takes the topology and the registry (the values app.Main's build
// function returns), checks them as the runtime does at start-up, and
// runs them without a broker. [TopologyDriver.Pipe] writes a record to an
// ingress topic; the ingress routes it (by key, or with its Router), the
// functions it reaches run, and the messages they send each other are
// delivered, in the order the runtime delivers them, until none are left.
// Egress records come out by topic ([TopologyDriver.Records],
// [TopologyDriver.ReadRecords], decoded with [ReadValues]); the state of
// any address is read with [StateOf]:
//
//	d, err := functionstest.NewTopologyDriver(shop.Build())
//	if err != nil {
//		t.Fatal(err) // every declaration mistake, as at start-up
//	}
//	if err := d.Pipe("add-to-cart", "", []byte(`{"userId":"alice","itemId":"socks","quantity":2}`)); err != nil {
//		t.Fatal(err) // the dead letters the record caused
//	}
//	receipts, err := functionstest.ReadValues(d, "receipts", shop.Receipts.Codec())
//
// What the runtime sends to the dead-letter topic (a record the ingress
// cannot route, a message to a function type the application lacks, a
// failed invocation, an egress record for a topic its egress does not
// have) is a [DeadLetter], returned by the call that caused it and kept in
// [TopologyDriver.DeadLetters]; the driver applies the runtime's own rules
// (package topology's Route and EgressRecord, package functions/driver),
// so it finds the same mistakes. [TopologyDriver.Request] sends a message
// as the HTTP listener does for a request with ?wait= and returns the
// reply. Delayed messages and expiring state follow the fake clock, which
// [TopologyDriver.Advance] moves.
//
// Unlike the runtime, the driver does not retry a failed invocation (a
// function that fails in a test fails the same way the next time), and
// runs only Go functions: a topology with remote functions cannot be
// driven.
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
// A Harness and a TopologyDriver are safe for concurrent use, but the
// order in which concurrent invocations of one address see each other's
// state is undefined for a Harness.
package functionstest
