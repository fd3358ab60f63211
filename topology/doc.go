// Package topology describes how a stateloop application maps onto Kafka:
// its name (the consumer group), the partition count of its internal
// topics, the ingress topics and how their records reach function
// addresses, and the egresses functions write to.
//
// # Concepts
//
// A [Topology] is pure data. [Topology.Validate] reports every problem at
// once and never talks to a broker. The topic names of an application are
// derived from it:
//
//	<app>-loop              messages to addresses, key = function id
//	<app>-<T>-table         state of function type T (compacted), key = id
//	<app>-dlq               records that could not be processed
//
// In <T>, a function type "namespace/name" is written as
// EscapeType(namespace/name): every '_' is doubled and the '/' becomes "_.",
// so the mapping is injective ("a.b/c" gives "a.b_.c", "a/b.c" gives
// "a_.b.c") and the table topic of T is also the Goka group table of the
// group "<app>-<T>".
//
// # Errors
//
// Validate returns all problems joined with errors.Join, each naming the
// field it is about.
package topology
