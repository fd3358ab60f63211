// Package wire encodes the records stateloop keeps in Kafka: the envelope of
// a message on the loop topic and the state record of an address in a table
// topic. Both are protobuf messages, written with protowire so that no
// generated code is needed; their layout is documented in docs/wire.md.
//
// Address and TypedValue use the field numbers of StateFun's
// request-reply.proto, so the envelope can carry a StateFun TypedValue as
// it is.
package wire
