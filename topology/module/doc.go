// Package module reads a StateFun module.yaml: the file that defines a
// Stateful Functions application by its HTTP function endpoints, Kafka
// ingresses and Kafka egresses, in the formats of StateFun 3.x and 2.x. stateloop runs such a file with
// "stateloop run -f module.yaml".
//
// # Concepts
//
// A module file holds YAML documents separated by "---", each a kind and a
// spec:
//
//	kind: io.statefun.endpoints.v2/http
//	spec:
//	  functions: example/*
//	  urlPathTemplate: http://functions:8000/statefun
//	---
//	kind: io.statefun.kafka.v1/ingress
//	spec:
//	  id: example/names
//	  address: kafka:9092
//	  topics:
//	    - topic: names
//	      valueType: io.statefun.types/string
//	      targets: [example/person]
//
// [Parse] turns the file into a [Module]: its [Endpoint] bindings, its
// [KafkaIngress] and [KafkaEgress] values, and the playground's HTTP
// ingress and egress if present. The single-document format of StateFun
// 3.0 ("version: 3.0") is read too, as StateFun 3.x does. Kinds stateloop
// knows but does not run (Kinesis) are rejected with a message saying so.
//
// So are the single-document formats of StateFun 2.x (version "2.0", and
// "1.0" of StateFun 2.0), which StateFun 3.x no longer reads: each
// function with its endpoint URL and declared states, routable protobuf
// Kafka ingresses (statefun.kafka.io/routable-protobuf-ingress, whose
// typeUrl becomes the messages' type name) and generic Kafka egresses.
// Their endpoints have [Endpoint.Protocol] [Protocol2]: the functions speak
// the StateFun 2.x request-reply protocol, with the states of
// [Endpoint.States].
// docs/module-yaml.md lists every kind and key.
//
// [Module.EndpointFor] finds the endpoint of a function type (an exact
// binding wins over a namespace binding "ns/*"), [Endpoint.URLFor] gives
// the URL to call, and [Module.Topology] converts the ingresses and
// egresses to the [topology] types the runtime uses.
//
// # Differences from StateFun
//
// StateFun ignores keys it does not know; Parse reports them, with a "did
// you mean" when the key looks like a typo. Other checks StateFun makes
// only when the job starts, or not at all, are made when parsing: type
// names, URLs, durations, broker addresses, duplicate bindings, ids and
// topics, and that TLS files can be read.
//
// Files named by the async transport's TLS keys are resolved as StateFun
// does, except that a relative path, and the path of a "classpath:" name,
// are relative to the module file's directory.
//
// # Errors
//
// Parse reports every problem of a file at once, as an *[Error] whose
// Problems carry the file name, the document number, line and column, the
// key path and a message that says what is expected. Settings accepted but
// without effect are listed in [Module.Warnings].
//
// # Concurrency
//
// Parse may run concurrently. A Module is plain data: read it from as many
// goroutines as needed, as long as nobody changes it.
package module
