package interop_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// The traced chain, in the module of the interop scenario (moduleYAML)
// with the namespace gosdk:
//
//	gosdk-names topic (string, keyed by id) → gosdk/greeter: the official
//	  Go SDK, served over HTTP, sends "<text> via a" to local/b (same id)
//	  → local/b (Go, in the runtime): writes "<text> via a via b" to the
//	    egress interop/greetings, topic gosdk-greetings, keyed by id
//
// Spans are collected in memory through processor.WithTracerProvider.

// tracedSDKFunctions is gosdk/greeter, written with the official Go SDK.
func tracedSDKFunctions(t *testing.T) statefun.StatefulFunctions {
	t.Helper()
	b := statefun.StatefulFunctionsBuilder()
	err := b.WithSpec(statefun.StatefulFunctionSpec{
		FunctionType: statefun.TypeNameFrom("gosdk/greeter"),
		Function: statefun.StatefulFunctionPointer(func(ctx statefun.Context, msg statefun.Message) error {
			ctx.Send(statefun.MessageBuilder{
				Target: statefun.Address{FunctionType: statefun.TypeNameFrom("local/b"), Id: ctx.Self().Id},
				Value:  msg.AsString() + " via a",
			})
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tracedLocalApp is local/b.
func tracedLocalApp() (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: "local/b",
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			ctx.SendEgress("interop/greetings", functions.KafkaMessage("gosdk-greetings", ctx.Self().ID, []byte(s+" via b")))
			return nil
		})),
		Egresses: []functions.TypeName{"interop/greetings"},
	})
	return topology.Topology{Functions: []functions.TypeName{"local/b"}}, reg
}

// TestTraceFollowsIngressThroughAGoSDKFunctionAndAGoFunctionToEgress runs
// the chain above with tracing on and checks that each record's spans form
// one trace: the ingress span (a child of the producer's traceparent when
// the record has one, else the root of a new trace), the invocation of
// gosdk/greeter (whose HTTP request carried its span as traceparent), the
// invocation of local/b, each the child of the one before, and the egress
// record carrying local/b's span.
func TestTraceFollowsIngressThroughAGoSDKFunctionAndAGoFunctionToEgress(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	createTopics(t, client, map[string]int32{"gosdk-names": 4, "gosdk-greetings": 2})

	// the SDK's server, recording the traceparent of each request
	var mu sync.Mutex
	var requests []string
	sdk := tracedSDKFunctions(t).AsHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Header.Get("traceparent"))
		mu.Unlock()
		sdk.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	modulePath := filepath.Join(dir, "module.yaml")
	yaml := strings.NewReplacer("{{ns}}", "gosdk", "{{url}}", srv.URL, "{{brokers}}", strings.Join(brokers, ","), "{{app}}", "interop-trace").Replace(moduleYAML)
	if err := os.WriteFile(modulePath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	flags := app.Flags{DataDir: filepath.Join(dir, "data"), Partitions: 4, LogLevel: "warn", ModuleFiles: []string{modulePath}}
	run := apptest.Start(t, flags, tracedLocalApp, app.WithProcessorOptions(processor.WithTracerProvider(tp)))
	run.WaitFor(t, "application interop-trace ready", 30*time.Second)

	// Alice continues the producer's trace; Bob has none and starts one.
	upstream := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled, Remote: true,
	})
	produceTraced(t, client, "gosdk-names", "Alice", upstream)
	produceTraced(t, client, "gosdk-names", "Bob", trace.SpanContext{})
	waitForRecords(t, client, "gosdk-greetings", 2)
	run.Stop()
	if err := <-run.Err; err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, run.Out)
	}

	spans := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		spans[s.SpanContext.SpanID()] = s
	}
	mu.Lock()
	requested := slices.Clone(requests)
	mu.Unlock()
	sent := map[string]bool{}
	for _, tp := range requested {
		sent[tp] = true
	}
	out := kafkatest.Records(t, client, "gosdk-greetings")
	if len(out) != 2 {
		t.Fatalf("%d egress records, want 2", len(out))
	}
	for _, rec := range out {
		id := string(rec.Key)
		if want := id + " via a via b"; string(rec.Value) != want {
			t.Errorf("egress record %s: %q, want %q", id, rec.Value, want)
		}
		egress := spanContextOf(rec.Headers["traceparent"])
		if !egress.IsValid() {
			t.Errorf("egress record %s: traceparent %q, want the span of local/b", id, rec.Headers["traceparent"])
			continue
		}
		// walk the chain back from the span the egress record names
		chain := []struct {
			name  string
			attrs map[attribute.Key]string
		}{
			{"invoke local/b", map[attribute.Key]string{"stateloop.function.id": id, "stateloop.function.kind": "local", "stateloop.caller.type": "gosdk/greeter", "stateloop.outcome": "ok"}},
			{"invoke gosdk/greeter", map[attribute.Key]string{"stateloop.function.id": id, "stateloop.function.kind": "remote", "stateloop.attempt": "1", "stateloop.outcome": "ok"}},
			{"ingress gosdk-names", map[attribute.Key]string{"messaging.destination.name": "gosdk-names"}},
		}
		at := egress
		var last tracetest.SpanStub
		for _, want := range chain {
			s, ok := spans[at.SpanID()]
			if !ok {
				t.Errorf("record %s: no span %s (want %s) among the %d exported", id, at.SpanID(), want.name, len(spans))
				break
			}
			if s.Name != want.name || s.SpanContext.TraceID() != egress.TraceID() {
				t.Errorf("record %s: span %s is %q of trace %s, want %q of trace %s", id, at.SpanID(), s.Name, s.SpanContext.TraceID(), want.name, egress.TraceID())
			}
			for k, v := range want.attrs {
				if got := spanAttr(s, k); got != v {
					t.Errorf("record %s: span %s: %s = %q, want %q", id, s.Name, k, got, v)
				}
			}
			if s.Name == "invoke gosdk/greeter" && !sent[traceparentOf(s.SpanContext)] {
				t.Errorf("record %s: no request to the Go SDK carried traceparent %s of %s; got %q", id, traceparentOf(s.SpanContext), s.Name, requested)
			}
			last, at = s, s.Parent
		}
		switch id {
		case "Alice":
			if last.Parent.SpanID() != upstream.SpanID() || egress.TraceID() != upstream.TraceID() {
				t.Errorf("record Alice: ingress span's parent %s in trace %s, want the producer's span %s of trace %s",
					last.Parent.SpanID(), egress.TraceID(), upstream.SpanID(), upstream.TraceID())
			}
		case "Bob":
			if last.Parent.IsValid() || egress.TraceID() == upstream.TraceID() {
				t.Errorf("record Bob: ingress span's parent %v, trace %s; want the root of a new trace", last.Parent.SpanID(), egress.TraceID())
			}
		}
	}
}

// produceTraced writes a StateFun string keyed by it, with the traceparent
// of sc if valid.
func produceTraced(t *testing.T, client sarama.Client, topic, s string, sc trace.SpanContext) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	v, err := functions.StringType.Codec().Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(s), Value: sarama.ByteEncoder(v)}
	if sc.IsValid() {
		m.Headers = []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte(traceparentOf(sc))}}
	}
	if _, _, err := sp.SendMessage(m); err != nil {
		t.Fatalf("produce %s: %v", s, err)
	}
}

func traceparentOf(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

func spanContextOf(traceparent string) trace.SpanContext {
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}

func spanAttr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}
