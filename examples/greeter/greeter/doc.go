// Package greeter is the stateloop version of the greeter of Apache Flink
// Stateful Functions: it greets people by name and remembers how often it
// has seen each of them.
//
// # Concepts
//
// Names arrive as plain UTF-8 records on the Kafka topic "names", with the
// name as key and as value. The ingress sends each record to the function
// type greeter/greet at the address named by the record key, as a message
// of type greeter/name. The function counts the visits of its address in
// the state value "visits" and writes a greeting, keyed by the name, to the
// egress greeter/greetings, which is the topic "greetings".
//
// [Build] returns the application, named "greeter", for app.Main and
// `stateloop run greeter`.
package greeter
