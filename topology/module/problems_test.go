package module_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/topology/module"
)

// TestParseReportsEveryProblem checks each class of problem with its exact
// position and message. Every case lists all problems of its file, in file
// order.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		yaml string
		want []string
	}{
		{
			name: "YAML syntax error",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
   urlPathTemplate: http://x/
`,
			want: []string{
				`module.yaml:4: not valid YAML: mapping values are not allowed in this context`,
			},
		},
		{
			name: "empty file",
			file: "module.yaml",
			yaml: ``,
			want: []string{
				`module.yaml: no documents; want one or more documents with a kind and a spec, separated by ---`,
			},
		},
		{
			name: "only comments and separators",
			file: "module.yaml",
			yaml: `# only a comment
---
`,
			want: []string{
				`module.yaml: no documents; want one or more documents with a kind and a spec, separated by ---`,
			},
		},
		{
			name: "document that is not a mapping",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
  urlPathTemplate: http://x/
---
- kind: io.statefun.endpoints.v2/http
`,
			want: []string{
				`module.yaml:6:1 (document 2): want a mapping with the keys kind, spec; got a list`,
			},
		},
		{
			name: "missing or malformed kind and spec",
			file: "module.yaml",
			yaml: `spec:
  functions: a/*
---
kind: io.statefun.kafka.v1/egress
---
kind: [io.statefun.kafka.v1/egress]
spec: {}
`,
			want: []string{
				`module.yaml:1:1 (document 1): kind: missing; a kind like io.statefun.endpoints.v2/http`,
				`module.yaml:4:1 (document 2): spec: missing; a mapping with the settings of the kind`,
				`module.yaml:6:7 (document 3): kind: want a kind like io.statefun.endpoints.v2/http; got a list`,
			},
		},
		{
			name: "unknown, unsupported and outdated kinds",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v3/http
spec: {}
---
kind: io.statefun.kinesis.v1/ingress
spec: {}
---
kind: http
spec: {}
---
kind: statefun.kafka.io/routable-protobuf-ingress
spec: {}
---
kind: com.example/custom
spec: {}
---
version: "3.0"
kind: io.statefun.kafka.v1/egress
spec:
  id: a/b
`,
			want: []string{
				`module.yaml:1:7 (document 1): kind: unknown kind "io.statefun.endpoints.v3/http" (did you mean "io.statefun.endpoints.v2/http"?); stateloop reads io.statefun.endpoints.v2/http, io.statefun.endpoints.v1/http, io.statefun.kafka.v1/ingress, io.statefun.kafka.v1/egress, io.statefun.playground.v1/ingress, io.statefun.playground.v1/egress`,
				`module.yaml:4:7 (document 2): kind: io.statefun.kinesis.v1/ingress is not supported by stateloop: stateloop reads and writes Kafka only; use io.statefun.kafka.v1/ingress`,
				`module.yaml:7:7 (document 3): kind: "http" is a kind name of the single-document 3.0 format; in a kind/spec document write io.statefun.endpoints.v1/http`,
				`module.yaml:10:7 (document 4): kind: statefun.kafka.io/routable-protobuf-ingress is a type of the StateFun 2.x formats, for the ingresses and egresses of a file with version: "2.0"; in a kind/spec document write io.statefun.kafka.v1/ingress`,
				`module.yaml:13:7 (document 5): kind: unknown kind "com.example/custom"; stateloop reads io.statefun.endpoints.v2/http, io.statefun.endpoints.v1/http, io.statefun.kafka.v1/ingress, io.statefun.kafka.v1/egress, io.statefun.playground.v1/ingress, io.statefun.playground.v1/egress`,
				`module.yaml:16:1 (document 6): version: unknown key; the single-document format ("version: 3.0" with a module key) must be the only document in the file; write kind/spec documents instead`,
			},
		},
		{
			name: "StateFun 2.x format (version 2.0)",
			file: "module.yaml",
			yaml: `version: "2.0"
module:
  meta:
    type: remote
  spec:
    functions:
      - function:
          meta:
            kind: grpc
            type: example/greeter
          spec:
            host: localhost
            endpoint: http://python-worker:8000/{function.name}
            states:
              - seen_count
              - name: seen_count
              - name: visits
                expireAfter: 5min
                expireMode: after-read
              - name: visits
              - name: lonely
                expireMode: after-write
            timeout: 0
            readTimeout: 0
            maxNumBatchRequests: many
      - function:
          meta:
            kind: http
            type: example/greeter
          spec:
            endpoint: ftp://x/
    routers:
      - router: {}
    ingresses:
      - ingress:
          meta:
            type: statefun.kafka.io/protobuf-ingress
            id: example/a
          spec: {}
      - ingress:
          meta:
            type: statefun.kafka.io/routable-protobuf-ingres
            id: example/b
          spec: {}
      - ingress:
          meta:
            type: statefun.kafka.io/routable-protobuf-ingress
            id: example/c
          spec:
            topics:
              - topic: names
                valueType: example/Name
                targets: [example/greeter]
              - topic: more
                typeUrl: example.GreetRequest
                targets: [example/greeter]
    egresses:
      - egress:
          meta:
            type: io.statefun.kafka/egress
            id: example/d
          spec: {}
      - egress:
          meta:
            type: statefun.kafka.io/generic-egress
            id: example/e
          spec:
            deliverySemantic:
              type: exactly-once
              transactionTimeout: 15min
`,
			want: []string{
				`module.yaml:9:19 (document 1): module.spec.functions[0].function.meta.kind: grpc functions are not supported: stateloop calls remote functions over HTTP; want http`,
				`module.yaml:12:13 (document 1, http): module.spec.functions[0].function.spec.host: unknown key; host and port are for grpc functions, which stateloop does not run; an http function has endpoint`,
				`module.yaml:13:23 (document 1, http): module.spec.functions[0].function.spec.endpoint: "http://python-worker:8000/{function.name}": a StateFun 2.x endpoint is the function's URL as it is, with no placeholders`,
				`module.yaml:15:17 (document 1, http): module.spec.functions[0].function.spec.states[0]: version "2.0" declares each state as a mapping, like "- name: seen_count"; a list of names is version "1.0"`,
				`module.yaml:19:29 (document 1, http): module.spec.functions[0].function.spec.states[2].expireMode: unknown expire mode "after-read"; want after-invoke or after-write`,
				`module.yaml:20:23 (document 1, http): module.spec.functions[0].function.spec.states[3].name: state "visits" is declared twice (first on line 17); declare it once`,
				`module.yaml:23:22 (document 1, http): module.spec.functions[0].function.spec.timeout: must be longer than 0`,
				`module.yaml:25:34 (document 1, http): module.spec.functions[0].function.spec.maxNumBatchRequests: want a whole number (0 or less for no cap); got "many"`,
				`module.yaml:29:19 (document 1, http): module.spec.functions[1].function.meta.type: function type example/greeter is already declared (document 1, line 10); declare it once`,
				`module.yaml:31:23 (document 1, http): module.spec.functions[1].function.spec.endpoint: "ftp://x/": scheme "ftp"; want http or https`,
				`module.yaml:32:5 (document 1): module.spec.routers: unknown key; protobuf routers are not supported by stateloop; read the topic with an ingress of type statefun.kafka.io/routable-protobuf-ingress, whose topics name their typeUrl and targets`,
				`module.yaml:37:19 (document 1): module.spec.ingresses[0].ingress.meta.type: statefun.kafka.io/protobuf-ingress needs a protobuf router (routers), which stateloop does not run; use statefun.kafka.io/routable-protobuf-ingress, whose topics name their typeUrl and targets`,
				`module.yaml:42:19 (document 1): module.spec.ingresses[1].ingress.meta.type: unknown ingress type "statefun.kafka.io/routable-protobuf-ingres" (did you mean "statefun.kafka.io/routable-protobuf-ingress"?); stateloop reads statefun.kafka.io/routable-protobuf-ingress`,
				`module.yaml:51:17 (document 1, statefun.kafka.io/routable-protobuf-ingress): module.spec.ingresses[2].ingress.spec.topics[0].typeUrl: missing; a protobuf type URL like "type.googleapis.com/com.example.Order"`,
				`module.yaml:52:17 (document 1, statefun.kafka.io/routable-protobuf-ingress): module.spec.ingresses[2].ingress.spec.topics[0].valueType: unknown key; valueType is the key of StateFun 3.x; a StateFun 2.x file names the type with typeUrl`,
				`module.yaml:55:26 (document 1, statefun.kafka.io/routable-protobuf-ingress): module.spec.ingresses[2].ingress.spec.topics[1].typeUrl: "example.GreetRequest" has no '/'; write "type.googleapis.com/example.GreetRequest": stateloop needs a namespace/name, and the SDKs' Unpack and Is read only the part after the last '/'`,
				`module.yaml:60:19 (document 1): module.spec.egresses[0].egress.meta.type: unknown egress type "io.statefun.kafka/egress"; it is a type of the StateFun 3.0 format (version "3.0"), whose egress is io.statefun.kafka.v1/egress; stateloop reads statefun.kafka.io/generic-egress`,
				`module.yaml:69:15 (document 1, statefun.kafka.io/generic-egress): module.spec.egresses[1].egress.spec.deliverySemantic.transactionTimeoutMillis: missing; exactly-once needs a transaction timeout in milliseconds, like 900000`,
				`module.yaml:70:15 (document 1, statefun.kafka.io/generic-egress): module.spec.egresses[1].egress.spec.deliverySemantic.transactionTimeout: unknown key; StateFun 2.x reads transactionTimeoutMillis, a whole number of milliseconds`,
			},
		},
		{
			name: "StateFun 2.0 format (version 1.0)",
			file: "module.yaml",
			yaml: `version: "1.0"
module:
  meta:
    type: local
  spec:
    endpoints: []
    functions:
      - function:
          meta:
            kind: http
            type: example/greeter
          spec:
            states:
              - name: seen_count
                expireAfter: 1min
`,
			want: []string{
				`module.yaml:4:11 (document 1): module.meta.type: unknown module type "local"; want remote`,
				`module.yaml:6:5 (document 1): module.spec.endpoints: unknown key; endpoints is a key of version 3.0; a StateFun 2.x file (version "1.0") declares each function under functions`,
				`module.yaml:13:13 (document 1, http): module.spec.functions[0].function.spec.endpoint: missing; the function's http or https URL, like "http://python-worker:8000/statefun"`,
				`module.yaml:14:17 (document 1, http): module.spec.functions[0].function.spec.states[0]: version "1.0" declares states by name only, like "- seen_count"; for expireAfter write version: "2.0" and "- name: seen_count"`,
			},
		},
		{
			name: "version 3.1 single-document format",
			file: "module.yaml",
			yaml: `version: "3.1"
module: {}
`,
			want: []string{
				`module.yaml:1:10 (document 1): version: StateFun has no reader for version 3.1 files; write kind/spec documents without a version key`,
			},
		},
		{
			name: "malformed 3.0 single-document format",
			file: "module.yaml",
			yaml: `version: "3.0"
module:
  meta:
    type: embedded
  spec:
    endpoints:
      - endpoint:
          meta:
            kind: io.statefun.kafka/ingress
          spec: {}
    ingresses:
      - ingress:
          meta:
            type: io.statefun.kinesis/ingress
            id: a/b
          spec: {}
      - ingress:
          meta:
            type: io.statefun.kafka/ingress
          spec: {}
    egress: []
`,
			want: []string{
				`module.yaml:4:11 (document 1): module.meta.type: unknown module type "embedded"; want remote`,
				`module.yaml:9:19 (document 1): module.spec.endpoints[0].endpoint.meta.kind: io.statefun.kafka.v1/ingress is not an endpoint kind`,
				`module.yaml:14:19 (document 1): module.spec.ingresses[0].ingress.meta.type: io.statefun.kinesis.v1/ingress is not supported by stateloop: stateloop reads and writes Kafka only; use io.statefun.kafka.v1/ingress`,
				`module.yaml:19:13 (document 1): module.spec.ingresses[1].ingress.meta.id: missing; an ingress id like "com.example/orders"`,
				`module.yaml:21:5 (document 1): module.spec.egress: unknown key; did you mean "egresses"?`,
			},
		},
		{
			name: "unknown, misspelt, misplaced and duplicate keys",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
  functions: b/*
  urlPathTemplate: http://x/
  timeouts:
    call: 1m
  maxBatch: 3
  transports:
    type: io.statefun.transports.v1/async
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: c/*
  urlPathTemplate: http://x/
  transport: {}
  timeouts:
    Call: 1m
`,
			want: []string{
				`module.yaml:4:3 (document 1, io.statefun.endpoints.v2/http): spec.functions: duplicate key; first set on line 3`,
				`module.yaml:6:3 (document 1, io.statefun.endpoints.v2/http): spec.timeouts: unknown key; in io.statefun.endpoints.v2/http timeouts go under transport: transport.call and transport.connect (async), or transport.timeouts (okhttp)`,
				`module.yaml:8:3 (document 1, io.statefun.endpoints.v2/http): spec.maxBatch: unknown key; known keys are functions, urlPathTemplate, maxNumBatchRequests, transport`,
				`module.yaml:9:3 (document 1, io.statefun.endpoints.v2/http): spec.transports: unknown key; did you mean "transport"?`,
				`module.yaml:16:3 (document 2, io.statefun.endpoints.v1/http): spec.transport: unknown key; io.statefun.endpoints.v1/http always uses the okhttp transport; to choose a transport use kind io.statefun.endpoints.v2/http`,
				`module.yaml:18:5 (document 2, io.statefun.endpoints.v1/http): spec.timeouts.Call: unknown key; did you mean "call"?`,
			},
		},
		{
			name: "wrong value types",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: [a/*]
  urlPathTemplate: {url: http://x/}
  maxNumBatchRequests: many
  transport: async
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: a/in
  topics:
    topic: t
`,
			want: []string{
				`module.yaml:3:14 (document 1, io.statefun.endpoints.v2/http): spec.functions: want a function type like "com.example/greeter", or "com.example/*" for every function of the namespace; got a list`,
				`module.yaml:4:20 (document 1, io.statefun.endpoints.v2/http): spec.urlPathTemplate: want an http or https URL; got a mapping`,
				`module.yaml:5:24 (document 1, io.statefun.endpoints.v2/http): spec.maxNumBatchRequests: want a whole number (0 or less for no cap); got "many"`,
				`module.yaml:6:14 (document 1, io.statefun.endpoints.v2/http): spec.transport: want a mapping with the keys type, call, connect, pool_ttl, pool_size, payload_max_bytes, trust_cacerts, client_cert, client_key, client_key_password, timeouts; got "async"`,
				`module.yaml:12:5 (document 2, io.statefun.kafka.v1/ingress): spec.topics: want a list of entries with topic, valueType and targets; got a mapping`,
			},
		},
		{
			name: "durations and sizes",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
  urlPathTemplate: http://x/
  transport:
    call: 1.5s
    connect: 0s
    pool_ttl: 1 fortnight
    pool_size: 0
    payload_max_bytes: 3000000000
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: b/*
  urlPathTemplate: http://x/
  maxNumBatchRequests: 3000000000
  transport:
    type: io.statefun.transports.v1/okhttp
    timeouts:
      call: 5s
      read: 6s
      write: 0
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: c/*
  urlPathTemplate: http://x/
  transport:
    type: io.statefun.transports.v1/okhttp
    timeouts:
      call: 5s
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: d/*
  urlPathTemplate: http://x/
  transport:
    type: io.statefun.transport.v1/async
`,
			want: []string{
				`module.yaml:6:11 (document 1, io.statefun.endpoints.v2/http): spec.transport.call: duration "1.5s": unknown unit ".5s"; want a duration like "10s", "10 s", "2m", "1min", "2 minutes", "100ms" or "1 day" (a bare number is milliseconds)`,
				`module.yaml:7:14 (document 1, io.statefun.endpoints.v2/http): spec.transport.connect: must be longer than 0`,
				`module.yaml:8:15 (document 1, io.statefun.endpoints.v2/http): spec.transport.pool_ttl: duration "1 fortnight": unknown unit "fortnight"; want a duration like "10s", "10 s", "2m", "1min", "2 minutes", "100ms" or "1 day" (a bare number is milliseconds)`,
				`module.yaml:9:16 (document 1, io.statefun.endpoints.v2/http): spec.transport.pool_size: 0: must be at least 1`,
				`module.yaml:10:24 (document 1, io.statefun.endpoints.v2/http): spec.transport.payload_max_bytes: 3000000000 is too large; at most 2147483647`,
				`module.yaml:16:24 (document 2, io.statefun.endpoints.v2/http): spec.maxNumBatchRequests: 3000000000 is too large; at most 2147483647`,
				`module.yaml:20:13 (document 2, io.statefun.endpoints.v2/http): spec.transport.timeouts.call: 5s is shorter than the default connect timeout (10s); okhttp needs connect, read and write no longer than call: raise call or set them too`,
				`module.yaml:21:13 (document 2, io.statefun.endpoints.v2/http): spec.transport.timeouts.read: 6s is longer than the call timeout 5s; okhttp needs it no longer than call`,
				`module.yaml:22:14 (document 2, io.statefun.endpoints.v2/http): spec.transport.timeouts.write: must be longer than 0`,
				`module.yaml:31:13 (document 3, io.statefun.endpoints.v2/http): spec.transport.timeouts.call: 5s is shorter than the default connect, read and write timeouts (10s); okhttp needs connect, read and write no longer than call: raise call or set them too`,
				`module.yaml:38:11 (document 4, io.statefun.endpoints.v2/http): spec.transport.type: unknown transport "io.statefun.transport.v1/async"; want io.statefun.transports.v1/async (the default) or io.statefun.transports.v1/okhttp; did you mean io.statefun.transports.v1/async?`,
			},
		},
		{
			name: "URL templates",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
  urlPathTemplate: functions:8000/statefun
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: b/*
  urlPathTemplate: ftp://functions/
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: c/*
  urlPathTemplate: http:///statefun
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: d/*
  urlPathTemplate: http+unix:///run/fns.sock/statefun
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: e/*
  urlPathTemplate: http://fns/{function.namespace}/{function.name}
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: f/*
  urlPathTemplate: http+unix:///run/fns/statefun
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: g/*
  urlPathTemplate: "http://fns/state fun"
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: h/*
  urlPathTemplate: http://fns:99999/
`,
			want: []string{
				`module.yaml:4:20 (document 1, io.statefun.endpoints.v2/http): spec.urlPathTemplate: "functions:8000/statefun" is not an http or https URL; did you mean "http://functions:8000/statefun"?`,
				`module.yaml:9:20 (document 2, io.statefun.endpoints.v2/http): spec.urlPathTemplate: "ftp://functions/": scheme "ftp"; want http or https`,
				`module.yaml:14:20 (document 3, io.statefun.endpoints.v2/http): spec.urlPathTemplate: "http:///statefun" has no host; want a URL like "http://functions:8000/statefun"`,
				`module.yaml:19:20 (document 4, io.statefun.endpoints.v2/http): spec.urlPathTemplate: "http+unix:///run/fns.sock/statefun": unix socket URLs work only with the okhttp transport, as in StateFun (kind io.statefun.endpoints.v1/http, or transport.type io.statefun.transports.v1/okhttp)`,
				`module.yaml:24:20 (document 5, io.statefun.endpoints.v2/http): spec.urlPathTemplate: "http://fns/{function.namespace}/{function.name}": the only placeholder is {function.name} (the name part of the function type)`,
				`module.yaml:29:20 (document 6, io.statefun.endpoints.v1/http): spec.urlPathTemplate: "http+unix:///run/fns/statefun": a unix socket URL names the socket file as a path segment ending in .sock, like "http+unix:///run/functions.sock/statefun"`,
				`module.yaml:34:20 (document 7, io.statefun.endpoints.v1/http): spec.urlPathTemplate: "http://fns/state fun" contains white space; want an http or https URL`,
				`module.yaml:39:20 (document 8, io.statefun.endpoints.v1/http): spec.urlPathTemplate: "http://fns:99999/": port 99999; want a number from 1 to 65535`,
			},
		},
		{
			name: "function bindings",
			file: "module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/b/c
  urlPathTemplate: http://x/
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: "*/x"
  urlPathTemplate: http://x/
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: a/x*
  urlPathTemplate: http://x/
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: a b/c
  urlPathTemplate: http://x/
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/cart
  urlPathTemplate: http://x/
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: shop/cart
  urlPathTemplate: http://y/
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/*
  urlPathTemplate: http://x/
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/*
  urlPathTemplate: http://z/
`,
			want: []string{
				`module.yaml:3:14 (document 1, io.statefun.endpoints.v2/http): spec.functions: "a/b/c" is not a binding; want a function type like "com.example/greeter", or "com.example/*" for every function of the namespace`,
				`module.yaml:8:14 (document 2, io.statefun.endpoints.v2/http): spec.functions: "*/x": only the name can be a wildcard; want a function type like "com.example/greeter", or "com.example/*" for every function of the namespace`,
				`module.yaml:13:14 (document 3, io.statefun.endpoints.v2/http): spec.functions: "a/x*": the wildcard must be the whole name, as in "a/*"`,
				`module.yaml:18:14 (document 4, io.statefun.endpoints.v2/http): spec.functions: "a b/c" is not a function type; it may use only letters, digits, '.', '_' and '-' around the '/'`,
				`module.yaml:28:14 (document 6, io.statefun.endpoints.v1/http): spec.functions: function type shop/cart is already bound (document 5, line 23); bind it once`,
				`module.yaml:38:14 (document 8, io.statefun.endpoints.v2/http): spec.functions: namespace shop/* is already bound (document 7, line 33); bind it once`,
			},
		},
		{
			name: "TLS files",
			file: "testdata/module.yaml",
			yaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
  urlPathTemplate: https://x/
  transport:
    trust_cacerts: certs/missing.pem
    client_cert: certs
    client_key_password: ~/password.txt
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: b/*
  urlPathTemplate: https://x/
  transport:
    client_key: classpath:certs/client.key.p8
    trust_cacerts: http://example.com/ca.pem
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: c/*
  urlPathTemplate: https://x/
  transport:
    type: io.statefun.transports.v1/okhttp
    trust_cacerts: certs/ca.pem
`,
			want: []string{
				`testdata/module.yaml:6:20 (document 1, io.statefun.endpoints.v2/http): spec.transport.trust_cacerts: cannot read "certs/missing.pem" (testdata/certs/missing.pem): no such file or directory`,
				`testdata/module.yaml:7:5 (document 1, io.statefun.endpoints.v2/http): spec.transport.client_cert: set without client_key; mutual TLS needs both client_cert and client_key`,
				`testdata/module.yaml:7:18 (document 1, io.statefun.endpoints.v2/http): spec.transport.client_cert: cannot read "certs" (testdata/certs): is a directory`,
				`testdata/module.yaml:8:26 (document 1, io.statefun.endpoints.v2/http): spec.transport.client_key_password: cannot read "~/password.txt" (testdata/~/password.txt): no such file or directory; ~ is not expanded (nor is it in StateFun)`,
				`testdata/module.yaml:15:5 (document 2, io.statefun.endpoints.v2/http): spec.transport.client_key: set without client_cert; mutual TLS needs both client_cert and client_key`,
				`testdata/module.yaml:16:20 (document 2, io.statefun.endpoints.v2/http): spec.transport.trust_cacerts: "http://example.com/ca.pem": scheme http is not supported; want a file path, a file: URL or classpath:<path> (relative to the module file's directory)`,
				`testdata/module.yaml:24:5 (document 3, io.statefun.endpoints.v2/http): spec.transport.trust_cacerts: unknown key; trust_cacerts is a setting of the async transport; the okhttp transport takes only type and timeouts {call, connect, read, write}`,
			},
		},
		{
			name: "Kafka ingress",
			file: "module.yaml",
			yaml: `kind: io.statefun.kafka.v1/ingress
spec:
  id: orders
  address: kafka:99999,
  topics: []
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: a/in
  address: kafka:9092
  autoOffsetResetPosition: newest
  startupPosition:
    type: specific-offsets
    date: 2020-01-01 00:00:00.000 +0000
  topics:
    - topic: [a, b]
      valueType: a/T
      targets: [a/f]
    - topic: bad topic
      valueType: T
      targets: []
    - topic: t
      targets: [a/f, "a/g h", a/f]
    - topic: t
      valueType: a/T
      targets: [a/f]
  properties:
    - a: 1
      b: 2
    - a: 3
    - c:
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: a/in
  topics:
    - topic: t
      valueType: a/T
      targets: [a/f]
  startupPosition:
    type: date
    date: 2020-02-01 04:15:00.00 Z
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: a/in2
  startupPosition:
    type: specific-offsets
    offsets:
      - t: 1
      - t/x: 1
      - t/0: -5
  properties:
    bootstrap.servers: kafka:9092
`,
			want: []string{
				`module.yaml:3:7 (document 1, io.statefun.kafka.v1/ingress): spec.id: "orders" is not a type name; want an ingress id like "com.example/orders" (namespace/name, one '/')`,
				`module.yaml:4:12 (document 1, io.statefun.kafka.v1/ingress): spec.address: "kafka:99999": port "99999"; want a number from 1 to 65535`,
				`module.yaml:5:11 (document 1, io.statefun.kafka.v1/ingress): spec.topics: empty; an ingress reads at least one topic`,
				`module.yaml:11:28 (document 2, io.statefun.kafka.v1/ingress): spec.autoOffsetResetPosition: "newest"; want earliest or latest`,
				`module.yaml:13:5 (document 2, io.statefun.kafka.v1/ingress): spec.startupPosition.offsets: missing; a list like "- orders/0: 42", one entry per partition`,
				`module.yaml:14:5 (document 2, io.statefun.kafka.v1/ingress): spec.startupPosition.date: only used with type date`,
				`module.yaml:16:14 (document 2, io.statefun.kafka.v1/ingress): spec.topics[0].topic: want one topic name; StateFun reads a single topic per entry, so write one entry per topic`,
				`module.yaml:19:14 (document 2, io.statefun.kafka.v1/ingress): spec.topics[1].topic: "bad topic" is not a Kafka topic name; use letters, digits, '.', '_' and '-', at most 249`,
				`module.yaml:20:18 (document 2, io.statefun.kafka.v1/ingress): spec.topics[1].valueType: "T" is not a type name; want a type name like "com.example/Order" (namespace/name)`,
				`module.yaml:21:16 (document 2, io.statefun.kafka.v1/ingress): spec.topics[1].targets: empty; records would go nowhere: list at least one function type`,
				`module.yaml:22:7 (document 2, io.statefun.kafka.v1/ingress): spec.topics[2].valueType: missing; a type name like "com.example/Order"`,
				`module.yaml:23:22 (document 2, io.statefun.kafka.v1/ingress): spec.topics[2].targets[1]: "a/g h" is not a function type; want a function type like "com.example/greeter", with letters, digits, '.', '_' and '-' around the '/'`,
				`module.yaml:23:31 (document 2, io.statefun.kafka.v1/ingress): spec.topics[2].targets[2]: a/f is listed twice; each record would reach it twice`,
				`module.yaml:24:14 (document 2, io.statefun.kafka.v1/ingress): spec.topics[3].topic: topic t is listed twice in this ingress; list it once with all its targets`,
				`module.yaml:28:7 (document 2, io.statefun.kafka.v1/ingress): spec.properties[0]: want one key and its value, like "- max.poll.records: 500"; got a mapping with 2 keys (StateFun reads only the first)`,
				`module.yaml:31:9 (document 2, io.statefun.kafka.v1/ingress): spec.properties[2]: property c has no value`,
				`module.yaml:35:7 (document 3, io.statefun.kafka.v1/ingress): spec.id: ingress id a/in is already used (document 2, line 9); ids must be unique`,
				`module.yaml:37:14 (document 3, io.statefun.kafka.v1/ingress): spec.topics[0].topic: topic t is already read by another ingress (document 2, line 22); stateloop routes each topic once`,
				`module.yaml:42:11 (document 3, io.statefun.kafka.v1/ingress): spec.startupPosition.date: "2020-02-01 04:15:00.00 Z" is not a date of the form yyyy-MM-dd HH:mm:ss.SSS Z, like "2020-02-01 04:15:00.000 +0000"`,
				`module.yaml:46:3 (document 4, io.statefun.kafka.v1/ingress): spec.topics: missing; a list of entries with topic, valueType and targets`,
				`module.yaml:50:9 (document 4, io.statefun.kafka.v1/ingress): spec.startupPosition.offsets[0]: "t" is not <topic>/<partition>, like "orders/0"`,
				`module.yaml:51:9 (document 4, io.statefun.kafka.v1/ingress): spec.startupPosition.offsets[1]: "t/x" is not <topic>/<partition>, like "orders/0"`,
				`module.yaml:52:14 (document 4, io.statefun.kafka.v1/ingress): spec.startupPosition.offsets[2]: offset "-5"; want a whole number, 0 or more`,
				`module.yaml:54:5 (document 4, io.statefun.kafka.v1/ingress): spec.properties: want a list of single-key mappings like "- max.poll.records: 500"; StateFun does not accept a plain mapping here`,
			},
		},
		{
			name: "Kafka egress",
			file: "module.yaml",
			yaml: `kind: io.statefun.kafka.v1/egress
spec:
  id: a/out
  address: kafka
  topics: [x]
  deliverySemantic:
    type: exactly_once
---
kind: io.statefun.kafka.v1/egress
spec:
  id: a/out
  deliverySemantic:
    type: exactly-once
---
kind: io.statefun.kafka.v1/egress
spec:
  id: a/out2
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 0ms
---
kind: io.statefun.kafka.v1/egress
spec:
  id: a/out3
  transactionTimeout: 15min
  deliverySemantic:
    type: exactly-once
    transactionTimeoutMillis: soon
`,
			want: []string{
				`module.yaml:4:12 (document 1, io.statefun.kafka.v1/egress): spec.address: "kafka" is not host:port; want a list of brokers like "kafka:9092" or "k1:9092,k2:9092"`,
				`module.yaml:5:3 (document 1, io.statefun.kafka.v1/egress): spec.topics: unknown key; a Kafka egress declares no topics: each record names its own topic`,
				`module.yaml:7:11 (document 1, io.statefun.kafka.v1/egress): spec.deliverySemantic.type: unknown delivery semantic "exactly_once"; want exactly-once, at-least-once or none (did you mean "exactly-once"?)`,
				`module.yaml:11:7 (document 2, io.statefun.kafka.v1/egress): spec.id: egress id a/out is already used (document 1, line 3); ids must be unique`,
				`module.yaml:13:5 (document 2, io.statefun.kafka.v1/egress): spec.deliverySemantic.transactionTimeout: missing; exactly-once needs a transaction timeout, a duration like "15min"`,
				`module.yaml:20:25 (document 3, io.statefun.kafka.v1/egress): spec.deliverySemantic.transactionTimeout: must be longer than 0`,
				`module.yaml:25:3 (document 4, io.statefun.kafka.v1/egress): spec.transactionTimeout: unknown key; transactionTimeout goes under deliverySemantic`,
				`module.yaml:28:31 (document 4, io.statefun.kafka.v1/egress): spec.deliverySemantic.transactionTimeoutMillis: want a whole number of milliseconds; got "soon"`,
			},
		},
		{
			name: "playground ingress and egress",
			file: "module.yaml",
			yaml: `kind: io.statefun.playground.v1/ingress
spec:
  port: 8090
---
kind: io.statefun.playground.v1/egress
spec:
  port: 8090
---
kind: io.statefun.playground.v1/ingress
spec:
  port: 70000
---
kind: io.statefun.playground.v1/egress
spec:
  topics: [a/b, a, a]
`,
			want: []string{
				`module.yaml:7:3 (document 2, io.statefun.playground.v1/egress): spec.topics: missing; a list of topic names like "greetings"`,
				`module.yaml:7:9 (document 2, io.statefun.playground.v1/egress): spec.port: port 8090 is also the playground ingress's port; use two ports`,
				`module.yaml:11:3 (document 3, io.statefun.playground.v1/ingress): a second playground ingress; there can be one (the first is in document 1, line 3)`,
				`module.yaml:11:9 (document 3, io.statefun.playground.v1/ingress): spec.port: 70000; want a port number from 1 to 65535`,
				`module.yaml:15:3 (document 4, io.statefun.playground.v1/egress): spec.port: missing; the HTTP port, like 8091`,
				`module.yaml:15:3 (document 4, io.statefun.playground.v1/egress): a second playground egress; there can be one (the first is in document 2, line 7)`,
				`module.yaml:15:12 (document 4, io.statefun.playground.v1/egress): spec.topics[0]: "a/b": a topic name is one URL path segment, like "greetings"`,
				`module.yaml:15:20 (document 4, io.statefun.playground.v1/egress): spec.topics[2]: topic a is listed twice`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := module.Parse(tc.file, []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse returned %+v and no error; want %d problems", m, len(tc.want))
			}
			if m != nil {
				t.Errorf("Parse returned a module with its error; want nil")
			}
			var perr *module.Error
			if !errors.As(err, &perr) {
				t.Fatalf("got error %T %v, want *module.Error", err, err)
			}
			var got []string
			for _, p := range perr.Problems {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
