// Package remote is the runtime's side of StateFun's remote request-reply
// protocol: it invokes functions written with the official StateFun SDKs
// (Go, Java, Python, JavaScript) over HTTP.
//
// # Concepts
//
// An endpoint ([Config]) is an HTTP(S) URL template that serves one or
// more function types; a [Client] talks to one endpoint. Each request is
// one protobuf ToFunction message (package pb) for one address: the
// address, every state value the function type declares, and a batch of
// calls in arrival order. The function answers with a FromFunction: either
// the effects of the whole batch (state changes, messages, delayed
// messages and cancellations, egress messages), converted to a [Result],
// or an IncompleteInvocationContext listing state specs the request
// lacked. The client learns those specs per function type (name, type
// name, expiration), attaches the address's values from then on and sends
// the batch again, all inside [Client.Invoke]. The specs live in memory:
// after a restart the first call of each type makes that round trip again.
//
// # StateFun 2.x
//
// With Config.Protocol [Protocol2] a client speaks the protocol of the
// StateFun 2.x SDKs instead (package pbv2): messages are protobuf Any
// values (a message of type name T is an Any with type URL T, so 2.x, 3.x
// and Go functions message each other), every state the module file
// declares (Config.States) goes with every request, and a state value is
// stored as the type URL and value of the Any the function wrote, so that
// it reads like any other state and a StateFun 3.x function declaring the
// same protobuf type can take it over. The versions cannot be told apart
// on the wire, so the endpoint's configuration decides; a response that
// shows the other version fails the invocation with a message naming the
// mismatch, instead of delivering empty messages ([ErrProtocol]).
// [KafkaRecord] decodes the Kafka egress records of both versions.
//
// A [Batcher] is the per-address scheduler for a single-goroutine worker:
// at most one request per address in flight, later calls batched behind
// it, backpressure when an address's backlog reaches the batch limit, and
// [Batcher.Drain] to finish everything before a transaction commits.
//
//	c, err := remote.New(remote.Config{URL: "http://functions:8000/{function.name}"})
//	if err != nil {
//		return err
//	}
//	res, err := c.Invoke(ctx, functions.Address{Type: "example/greeter", ID: "Bob"},
//		storedState, []remote.Call{{Argument: functions.StringType.Of("hi")}})
//
// # Errors
//
// Invoke retries transient failures (connection errors, timeouts, HTTP
// 408, 409, 420, 429, 499, 5xx) with exponential backoff and jitter within
// the call timeout, then fails with [ErrCallTimeout]. Everything a retry
// cannot fix fails at once with a permanent error ([IsPermanent]): other
// HTTP statuses, a response that is not an application/octet-stream
// FromFunction, and responses whose effects break the protocol
// ([ErrProtocol]), such as a state change of an undeclared state, a state
// written with another type name than declared, a message without a type
// name or to an invalid address. A stored value whose type name differs
// from the declared one is [ErrStateType]. Every error is an *[Error]
// naming the URL and the address.
//
// # Concurrency
//
// A Client is safe for concurrent use and bounds its in-flight HTTP
// requests (Config.MaxInFlight). A Batcher is not: it belongs to the
// worker goroutine, and only its requests run on goroutines of their own.
//
// # Wire compatibility
//
// Package pb is generated from this project's own request_reply.proto,
// with StateFun's messages and field numbers under another proto package
// name, so that a binary can link the official Go SDK too (see the comment
// in the .proto file). The tests run the official Go SDK over HTTP against
// this client.
package remote
