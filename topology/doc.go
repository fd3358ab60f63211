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
// The rules by which records enter and leave an application live here
// too, for every runtime to apply the same way (the processor and
// functionstest's TopologyDriver do): [Topology.Route] turns an ingress
// record into messages, by key or with the ingress's [Router] (such as
// [JSONFieldRouter], which routes JSON records by a field), and
// [Topology.EgressRecord] turns a function's egress message into a Kafka
// record. [Topology.ValidateRegistry] and [Topology.ValidateServed] check
// a registry against the topology at start-up.
//
// # Errors
//
// Validate returns all problems joined with errors.Join, each naming the
// field it is about.
package topology
