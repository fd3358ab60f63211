package module_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
	"github.com/stateloop/stateloop/topology/module"
)

var ignorePositions = cmp.Options{
	cmpopts.IgnoreFields(module.Endpoint{}, "Pos"),
	cmpopts.IgnoreFields(module.KafkaIngress{}, "Pos"),
	cmpopts.IgnoreFields(module.IngressTopic{}, "Pos"),
	cmpopts.IgnoreFields(module.KafkaEgress{}, "Pos"),
	cmpopts.IgnoreFields(module.State{}, "Pos"),
	cmpopts.IgnoreFields(module.PlaygroundIngress{}, "Pos"),
	cmpopts.IgnoreFields(module.PlaygroundEgress{}, "Pos"),
	cmpopts.EquateEmpty(),
}

func async(mod func(*module.Transport)) module.Transport {
	t := module.Transport{
		Type:            module.TransportAsync,
		CallTimeout:     2 * time.Minute,
		ConnectTimeout:  20 * time.Second,
		PoolTTL:         15 * time.Second,
		PoolSize:        1024,
		PayloadMaxBytes: 32 << 20,
	}
	if mod != nil {
		mod(&t)
	}
	return t
}

func okhttp(call, connect, read, write time.Duration) module.Transport {
	return module.Transport{Type: module.TransportOkHTTP, CallTimeout: call, ConnectTimeout: connect, ReadTimeout: read, WriteTimeout: write}
}

func TestParseFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want *module.Module
	}{
		{"playground-greeter.yaml", &module.Module{
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPEndpointV2, Functions: "example/*", Namespace: "example",
				URLPathTemplate: "http://functions:8000/statefun", MaxNumBatchRequests: 1000,
				Transport: async(nil),
			}},
			PlaygroundIngress: &module.PlaygroundIngress{Port: 8090},
			PlaygroundEgress:  &module.PlaygroundEgress{Port: 8091, Topics: []string{"greetings"}},
		}},
		{"showcase.yaml", &module.Module{
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPEndpointV2, Functions: "showcase.fns/*", Namespace: "showcase.fns",
				URLPathTemplate: "http://host-machine:8000/statefun", MaxNumBatchRequests: 1000,
				Transport: async(func(t *module.Transport) { t.CallTimeout = 24 * time.Hour }),
			}},
			Ingresses: []*module.KafkaIngress{{
				ID: "showcase.io/names", Address: []string{"kafka:9092"}, ConsumerGroupID: "my-group-id",
				Topics:          []module.IngressTopic{{Topic: "logins", ValueType: "showcase.types/userlogin", Targets: []functions.TypeName{"showcase.fns/user"}}},
				AutoOffsetReset: "latest",
				StartupPosition: module.StartupPosition{Type: module.StartupEarliest},
			}},
			Egresses: []*module.KafkaEgress{{
				ID: "showcase.io/greets", Address: []string{"kafka:9092"},
				DeliverySemantic: module.DeliveryExactlyOnce, TransactionTimeout: 15 * time.Minute,
			}},
		}},
		{"k8s.yaml", &module.Module{
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPEndpointV2, Functions: "example/*", Namespace: "example",
				URLPathTemplate: "http://functions.statefun.svc.cluster.local:8000/statefun", MaxNumBatchRequests: 1000,
				Transport: async(nil),
			}},
			Ingresses: []*module.KafkaIngress{{
				ID: "example/in", Address: []string{"kafka.statefun.svc.cluster.local:9092"}, ConsumerGroupID: "my-group-id",
				Topics:          []module.IngressTopic{{Topic: "names", ValueType: "example/MyMessage", Targets: []functions.TypeName{"example/hello"}}},
				AutoOffsetReset: "latest",
				StartupPosition: module.StartupPosition{Type: module.StartupLatest},
			}},
		}},
		{"smoke-e2e-tls.yaml", &module.Module{
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPEndpointV2, Functions: "statefun.smoke.e2e/command-interpreter-fn",
				Namespace: "statefun.smoke.e2e", Type: "statefun.smoke.e2e/command-interpreter-fn",
				URLPathTemplate: "https://remote-function-host:8000", MaxNumBatchRequests: 10000,
				Transport: async(func(t *module.Transport) {
					t.TLS = module.TLS{
						TrustCACerts:      filepath.Join("testdata", "certs", "ca.pem"),
						ClientCert:        filepath.Join("testdata", "certs", "client.crt"),
						ClientKey:         filepath.Join("testdata", "certs", "client.key.p8"),
						ClientKeyPassword: filepath.Join("testdata", "certs", "key_password.txt"),
					}
				}),
			}},
		}},
		{"okhttp.yaml", &module.Module{
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPEndpointV1, Functions: "com.foo.bar/*", Namespace: "com.foo.bar",
				URLPathTemplate: "http://bar.foo.com:8080/functions/{function.name}", MaxNumBatchRequests: 10000,
				Transport: okhttp(time.Minute, 30*time.Second, 20*time.Second, 10*time.Second),
			}, {
				Kind: module.KindHTTPEndpointV2, Functions: "com.foo.baz/*", Namespace: "com.foo.baz",
				URLPathTemplate: "http+unix:///run/functions.sock/statefun/{function.name}", MaxNumBatchRequests: 0,
				Transport: okhttp(2*time.Minute, 20*time.Second, 10*time.Second, 10*time.Second),
			}},
		}},
		{"kafka.yaml", &module.Module{
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPEndpointV2, Functions: "com.mycomp.foo/function-1",
				Namespace: "com.mycomp.foo", Type: "com.mycomp.foo/function-1",
				URLPathTemplate: "https://functions.example.com/{function.name}", MaxNumBatchRequests: 50,
				Transport: module.Transport{Type: module.TransportAsync, CallTimeout: 90 * time.Second, ConnectTimeout: 5 * time.Second,
					PoolTTL: 0, PoolSize: 16, PayloadMaxBytes: 1 << 20},
			}},
			Ingresses: []*module.KafkaIngress{{
				ID: "com.foo.bar/test-ingress", Address: []string{"kafka-broker:9092", "kafka-broker-2:9093"}, ConsumerGroupID: "my-group-id",
				Topics: []module.IngressTopic{
					{Topic: "topic-1", ValueType: "com.googleapis/com.mycomp.foo.MessageA", Targets: []functions.TypeName{"com.mycomp.foo/function-1", "com.mycomp.foo/function-2"}},
					{Topic: "topic-2", ValueType: "type.googleapis.com/com.mycomp.foo.MessageB", Targets: []functions.TypeName{"com.mycomp.foo/function-2"}},
				},
				AutoOffsetReset: "earliest",
				StartupPosition: module.StartupPosition{Type: module.StartupSpecificOffsets, Offsets: []module.PartitionOffset{
					{Topic: "topic-1", Partition: 0, Offset: 91}, {Topic: "topic-1", Partition: 1, Offset: 11}, {Topic: "topic-2", Partition: 0, Offset: 8},
				}},
				Properties: map[string]string{"foo.config": "bar", "max.poll.records": "500"},
			}, {
				ID: "com.foo.bar/from-a-date", Address: []string{"[::1]:9092"}, ConsumerGroupID: "from-properties",
				Topics:          []module.IngressTopic{{Topic: "topic-3", ValueType: "com.foo.bar/Event", Targets: []functions.TypeName{"com.mycomp.foo/function-3"}}},
				AutoOffsetReset: "latest",
				StartupPosition: module.StartupPosition{Type: module.StartupDate, Date: time.Date(2020, 2, 1, 4, 15, 0, 0, time.FixedZone("", 3600))},
				Properties:      map[string]string{"bootstrap.servers": "[::1]:9092", "group.id": "from-properties"},
			}},
			Egresses: []*module.KafkaEgress{{
				ID: "com.foo.bar/test-egress", Address: []string{"kafka-broker:9092"},
				DeliverySemantic: module.DeliveryExactlyOnce, TransactionTimeout: 100 * time.Second,
				Properties: map[string]string{"foo.config": "bar"},
			}, {
				ID: "com.foo.bar/fire-and-forget", Address: []string{"kafka-broker:9092"}, DeliverySemantic: module.DeliveryNone,
			}},
			// the only setting of the fixtures that stateloop ignores
			Warnings: []module.Problem{{Position: module.Position{File: "testdata/kafka.yaml", Document: 1, Line: 10, Column: 5},
				Kind: module.KindHTTPEndpointV2, Path: "spec.transport.pool_ttl", Message: "ignored: stateloop closes idle connections after 90 s"}},
		}},
		{"legacy-3.0.yaml", &module.Module{
			Legacy: true, Version: "3.0",
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPEndpointV1, Functions: "com.foo.bar/*", Namespace: "com.foo.bar",
				URLPathTemplate: "http://bar.foo.com:8080/functions/{function.name}", MaxNumBatchRequests: 10000,
				Transport: okhttp(time.Minute, 10*time.Second, 10*time.Second, 10*time.Second),
			}},
			Ingresses: []*module.KafkaIngress{{
				ID: "com.mycomp.igal/names", Address: []string{"kafka-broker:9092"}, ConsumerGroupID: "greeter",
				Topics:          []module.IngressTopic{{Topic: "names", ValueType: "com.mycomp.igal/Name", Targets: []functions.TypeName{"com.foo.bar/greeter"}}},
				AutoOffsetReset: "latest",
				StartupPosition: module.StartupPosition{Type: module.StartupLatest},
			}},
			Egresses: []*module.KafkaEgress{{
				ID: "com.mycomp.foo/bar", Address: []string{"kafka-broker:9092"},
				DeliverySemantic: module.DeliveryExactlyOnce, TransactionTimeout: 100 * time.Second,
				Properties: map[string]string{"foo.config": "bar"},
			}},
		}},
		{"statefun-2.0.yaml", &module.Module{
			Version: "2.0",
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPFunction, Protocol: module.Protocol2, Functions: "example/greeter",
				Namespace: "example", Type: "example/greeter",
				URLPathTemplate: "http://python-worker:8000/statefun", MaxNumBatchRequests: 500,
				Transport: okhttp(2*time.Minute, 10*time.Second, 10*time.Second, 10*time.Second),
				States: []module.State{
					{Name: "seen_count"},
					{Name: "last_seen", Expiration: functions.Expiration{Mode: functions.ExpireAfterCall, After: 5 * time.Minute}},
					{Name: "session", Expiration: functions.Expiration{Mode: functions.ExpireAfterWrite, After: time.Hour}},
					{Name: "draft"},
				},
			}, {
				Kind: module.KindHTTPFunction, Protocol: module.Protocol2, Functions: "example/relay",
				Namespace: "example", Type: "example/relay",
				URLPathTemplate: "http://python-worker:8000/statefun", MaxNumBatchRequests: 1000,
				Transport: okhttp(time.Minute, 5*time.Second, 30*time.Second, 20*time.Second),
			}},
			Ingresses: []*module.KafkaIngress{{
				ID: "example/names", Address: []string{"kafka-broker:9092"}, ConsumerGroupID: "my-group-id",
				Topics: []module.IngressTopic{{Topic: "names", ValueType: "com.googleapis/example.GreetRequest",
					Targets: []functions.TypeName{"example/greeter", "example/relay"}}},
				AutoOffsetReset: "latest",
				StartupPosition: module.StartupPosition{Type: module.StartupEarliest},
			}},
			Egresses: []*module.KafkaEgress{{
				ID: "example/greets", Address: []string{"kafka-broker:9092"},
				DeliverySemantic: module.DeliveryExactlyOnce, TransactionTimeout: 100 * time.Second,
			}},
			Warnings: []module.Problem{{Position: module.Position{File: "testdata/statefun-2.0.yaml", Document: 1, Line: 26, Column: 17},
				Kind: module.KindHTTPFunction, Path: "module.spec.functions[0].function.spec.states[3].expireMode",
				Message: "ignored: without expireAfter the state does not expire"}},
		}},
		{"statefun-1.0.yaml", &module.Module{
			Version: "1.0",
			Endpoints: []*module.Endpoint{{
				Kind: module.KindHTTPFunction, Protocol: module.Protocol2, Functions: "example/greeter",
				Namespace: "example", Type: "example/greeter",
				URLPathTemplate: "http://python-worker:8000/statefun", MaxNumBatchRequests: 500,
				Transport: okhttp(2*time.Minute, 10*time.Second, 10*time.Second, 10*time.Second),
				States:    []module.State{{Name: "seen_count"}},
			}},
			Ingresses: []*module.KafkaIngress{{
				ID: "example/names", Address: []string{"kafka-broker:9092"}, ConsumerGroupID: "my-group-id",
				Topics: []module.IngressTopic{{Topic: "names", ValueType: "com.googleapis/example.GreetRequest",
					Targets: []functions.TypeName{"example/greeter"}}},
				AutoOffsetReset: "latest",
				StartupPosition: module.StartupPosition{Type: module.StartupLatest},
			}},
			Egresses: []*module.KafkaEgress{{
				ID: "example/greets", Address: []string{"kafka-broker:9092"}, DeliverySemantic: module.DeliveryAtLeastOnce,
			}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", tc.file)
			got, err := module.ParseFile(path)
			if err != nil {
				t.Fatalf("ParseFile(%s): %v", path, err)
			}
			tc.want.File = path
			if diff := cmp.Diff(tc.want, got, ignorePositions); diff != "" {
				t.Errorf("ParseFile(%s) mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestParseRecordsPositions(t *testing.T) {
	t.Parallel()
	m, err := module.ParseFile(filepath.Join("testdata", "showcase.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("testdata", "showcase.yaml")
	tests := []struct {
		name      string
		got, want module.Position
	}{
		{"endpoint spec", m.Endpoints[0].Pos, module.Position{File: file, Document: 1, Line: 7, Column: 3}},
		{"ingress spec", m.Ingresses[0].Pos, module.Position{File: file, Document: 2, Line: 15, Column: 3}},
		{"ingress topic entry", m.Ingresses[0].Topics[0].Pos, module.Position{File: file, Document: 2, Line: 21, Column: 7}},
		{"egress spec", m.Egresses[0].Pos, module.Position{File: file, Document: 3, Line: 28, Column: 3}},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got position %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
}

// TestParseAcceptsWhatStateFunAccepts covers spellings that StateFun reads
// and that a stricter parser could wrongly reject.
func TestParseAcceptsWhatStateFunAccepts(t *testing.T) {
	t.Parallel()
	const endpoint = "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://f/\n"
	tests := []struct {
		name  string
		yaml  string
		check func(*module.Module) string
	}{
		{"bare number duration is milliseconds", endpoint + "  transport:\n    call: 60000\n", func(m *module.Module) string {
			return want(m.Endpoints[0].Transport.CallTimeout, time.Minute)
		}},
		{"duration with space and upper case", endpoint + "  transport:\n    call: 2 MIN\n", func(m *module.Module) string {
			return want(m.Endpoints[0].Transport.CallTimeout, 2*time.Minute)
		}},
		{"async timeouts block wins with its own defaults", endpoint + "  transport:\n    call: 5m\n    connect: 1s\n    timeouts:\n      call: 3m\n", func(m *module.Module) string {
			tr := m.Endpoints[0].Transport
			return want([]time.Duration{tr.CallTimeout, tr.ConnectTimeout}, []time.Duration{3 * time.Minute, 10 * time.Second})
		}},
		{"negative maxNumBatchRequests means no cap", endpoint + "  maxNumBatchRequests: -1\n", func(m *module.Module) string {
			return want(m.Endpoints[0].MaxNumBatchRequests, 0)
		}},
		{"quoted number", endpoint + "  maxNumBatchRequests: \"20\"\n", func(m *module.Module) string {
			return want(m.Endpoints[0].MaxNumBatchRequests, 20)
		}},
		{"empty documents and a trailing separator", "---\n" + endpoint + "---\n---\n", func(m *module.Module) string {
			return want(len(m.Endpoints), 1)
		}},
		{"unquoted legacy version", "version: 3.0\nmodule:\n  meta:\n    type: REMOTE\n  spec:\n    endpoints:\n", func(m *module.Module) string {
			return want(m.Legacy, true)
		}},
		{"anchors and aliases", "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: a/in\n  topics:\n    - topic: t1\n      valueType: a/T\n      targets: &targets [a/f, a/g]\n    - topic: t2\n      valueType: a/T\n      targets: *targets\n", func(m *module.Module) string {
			return want(m.Ingresses[0].Topics[1].Targets, []functions.TypeName{"a/f", "a/g"})
		}},
		{"exact binding next to a namespace binding", endpoint + "---\nkind: io.statefun.endpoints.v1/http\nspec:\n  functions: a/special\n  urlPathTemplate: https://special/\n", func(m *module.Module) string {
			return want(len(m.Endpoints), 2)
		}},
		{"egress without address or semantic", "kind: io.statefun.kafka.v1/egress\nspec:\n  id: a/out\n", func(m *module.Module) string {
			return want(m.Egresses[0].DeliverySemantic, module.DeliveryAtLeastOnce)
		}},
		{"template in the host", "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://{function.name}.fns:8000/\n", func(m *module.Module) string {
			return want(m.Endpoints[0].URLFor("a/b"), "http://b.fns:8000/")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := module.Parse("module.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if msg := tc.check(m); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func want[T any](got, want T) string {
	if diff := cmp.Diff(want, got); diff != "" {
		return "mismatch (-want +got):\n" + diff
	}
	return ""
}

func TestParseWarnsAboutIgnoredSettings(t *testing.T) {
	t.Parallel()
	const yaml = `kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
  urlPathTemplate: http://f/
  transport:
    call: 1m
    timeouts:
      call: 2m
      read: 10 sec
    client_key_password: testdata/certs/key_password.txt
---
kind: io.statefun.kafka.v1/egress
spec:
  id: a/out
  address: kafka:9092
  deliverySemantic:
    type: at-least-once
    transactionTimeout: 15min
  properties:
    - bootstrap.servers: other:9092
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: a/in
  topics:
    - topic: t
      valueType: a/T
      targets: [a/f]
  startupPosition:
    type: specific-offsets
    offsets:
      - other/0: 5
  consumerGroupId: shop
  properties:
    - group.id: other
    - auto.offset.reset: earliest
---
kind: io.statefun.kafka.v1/egress
spec:
  id: a/exactly
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 1min
  properties:
    - transaction.timeout.ms: 60000
`
	m, err := module.Parse("module.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var got []string
	for _, w := range m.Warnings {
		got = append(got, w.String())
	}
	wantWarnings := []string{
		`module.yaml:5:3 (document 1, io.statefun.endpoints.v2/http): spec.transport: the TLS files are not used: the endpoint URL is not https`,
		`module.yaml:6:5 (document 1, io.statefun.endpoints.v2/http): spec.transport.call: ignored: spec.transport.timeouts is set and wins, as in StateFun`,
		`module.yaml:9:7 (document 1, io.statefun.endpoints.v2/http): spec.transport.timeouts.read: ignored: the async transport has no read timeout`,
		`module.yaml:10:5 (document 1, io.statefun.endpoints.v2/http): spec.transport.client_key_password: ignored without client_cert and client_key`,
		`module.yaml:18:5 (document 2, io.statefun.kafka.v1/egress): spec.deliverySemantic.transactionTimeout: ignored: only used with type exactly-once`,
		`module.yaml:20:7 (document 2, io.statefun.kafka.v1/egress): spec.properties[0]: ignored: address is set and wins, as in StateFun`,
		`module.yaml:32:9 (document 3, io.statefun.kafka.v1/ingress): spec.startupPosition.offsets[0]: ignored: topic other is not read by this ingress`,
		`module.yaml:35:7 (document 3, io.statefun.kafka.v1/ingress): spec.properties[0]: ignored: consumerGroupId is set and wins, as in StateFun`,
		`module.yaml:36:7 (document 3, io.statefun.kafka.v1/ingress): spec.properties[1]: ignored: StateFun always sets it from autoOffsetResetPosition (default latest)`,
		`module.yaml:45:7 (document 4, io.statefun.kafka.v1/egress): spec.properties[0]: ignored: StateFun sets it from the transaction timeout of exactly-once`,
	}
	if diff := cmp.Diff(wantWarnings, got); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestParseFileReportsAnUnreadableFile(t *testing.T) {
	t.Parallel()
	_, err := module.ParseFile(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	var perr *module.Error
	if errors.As(err, &perr) {
		t.Errorf("got *module.Error %v, want the read error", err)
	}
}

func TestTopologyConversion(t *testing.T) {
	t.Parallel()
	m, err := module.ParseFile(filepath.Join("testdata", "kafka.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Topology("app")
	wantTopo := topology.Topology{
		App:       "app",
		Functions: []functions.TypeName{"com.mycomp.foo/function-1"},
		Ingresses: []topology.Ingress{
			{Topic: "topic-1", ValueType: "com.googleapis/com.mycomp.foo.MessageA", Targets: []functions.TypeName{"com.mycomp.foo/function-1", "com.mycomp.foo/function-2"}},
			{Topic: "topic-2", ValueType: "type.googleapis.com/com.mycomp.foo.MessageB", Targets: []functions.TypeName{"com.mycomp.foo/function-2"}},
			{Topic: "topic-3", ValueType: "com.foo.bar/Event", Targets: []functions.TypeName{"com.mycomp.foo/function-3"}},
		},
		Egresses: []topology.Egress{{ID: "com.foo.bar/test-egress"}, {ID: "com.foo.bar/fire-and-forget"}},
	}
	if diff := cmp.Diff(wantTopo, got, cmpopts.IgnoreFields(topology.Ingress{}, "Router")); diff != "" {
		t.Errorf("Topology mismatch (-want +got):\n%s", diff)
	}
}

// TestParseWarnsAboutPoolTTLOnlyWhenSet: regression for issue 10 item 16,
// pool_ttl has no effect in stateloop, and saying so for every endpoint
// (StateFun's default of 15 s is filled in) told users about a setting
// they never made. The warning is given where the file sets it.
func TestParseWarnsAboutPoolTTLOnlyWhenSet(t *testing.T) {
	t.Parallel()
	const endpoint = "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://f/\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unset", endpoint + "  transport:\n    call: 1m\n", nil},
		{"set", endpoint + "  transport:\n    call: 1m\n    pool_ttl: 30s\n", []string{
			`module.yaml:7:5 (document 1, io.statefun.endpoints.v2/http): spec.transport.pool_ttl: ignored: stateloop closes idle connections after 90 s`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := module.Parse("module.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			for _, w := range m.Warnings {
				got = append(got, w.String())
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
