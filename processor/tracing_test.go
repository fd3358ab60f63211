package processor

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// Unit tests of tracing on the transaction cycle: spans collected in
// memory, records on fakeKafka.

// tracedRig is a cycle rig whose processor traces into an in-memory
// exporter, each span exported as it ends.
func tracedRig(t *testing.T, topo topology.Topology, reg *functions.Registry, opts ...Option) (*cycleRig, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return newCycleRig(t, topo, reg, append(opts, WithTracerProvider(tp))...), exp
}

// An incoming trace context: the span that produced an ingress record.
const (
	upstreamTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	upstreamSpan   = "00f067aa0ba902b7"
	upstreamParent = "00-" + upstreamTrace + "-" + upstreamSpan + "-01"
)

func traceHeader(tc wire.Trace) []header { return traceHeaders(nil, tc) }

// fireDelayed advances the clock by d, fires the delayed messages due and
// commits; it returns the loop records then, which must be one: the
// delayed message.
func (r *cycleRig) fireDelayed(d time.Duration) []fakeRecord {
	r.t.Helper()
	r.clock.Advance(d)
	if err := r.s.fireDue(); err != nil {
		r.t.Fatal(err)
	}
	r.commit()
	loop := r.fk.all(string(r.p.topo.LoopTopic()))
	if len(loop) != 1 {
		r.t.Fatalf("%d loop records, want the delayed message", len(loop))
	}
	return loop
}

// headerValue returns the value of the header key, and whether there is
// one.
func headerValue(hs []header, key string) (string, bool) {
	for _, h := range hs {
		if string(h.Key) == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// spanContextOf parses a traceparent (and tracestate); invalid if it does
// not parse.
func spanContextOf(parent, state string) trace.SpanContext {
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": parent, "tracestate": state})
	return trace.SpanContextFromContext(ctx)
}

// spansNamed returns the exported spans of a name, in the order they
// ended.
func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// attr returns a span attribute as text ("" if absent).
func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// checkChild reports unless child is a span of parent's trace whose parent
// is parent.
func checkChild(t *testing.T, what string, child tracetest.SpanStub, parent trace.SpanContext) {
	t.Helper()
	if child.SpanContext.TraceID() != parent.TraceID() || child.Parent.SpanID() != parent.SpanID() {
		t.Errorf("%s: span %s of trace %s has parent %s, want a child of %s in trace %s", what, child.SpanContext.SpanID(), child.SpanContext.TraceID(),
			child.Parent.SpanID(), parent.SpanID(), parent.TraceID())
	}
}

// checkRecordTrace reports unless the headers of a record carry the span
// context want.
func checkRecordTrace(t *testing.T, what string, hs []header, want trace.SpanContext) {
	t.Helper()
	parent, _ := headerValue(hs, wire.TraceParentHeader)
	state, _ := headerValue(hs, wire.TraceStateHeader)
	got := spanContextOf(parent, state)
	if !got.IsValid() || got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() || got.TraceState().String() != want.TraceState().String() {
		t.Errorf("%s: traceparent %q tracestate %q, want span %s of trace %s (tracestate %q)", what, parent, state, want.SpanID(), want.TraceID(), want.TraceState())
	}
}

// A message is followed from its ingress record (which continues the
// producer's trace) through an invocation that sends a delayed message,
// the timer, the loop record the timer becomes, and the second
// invocation, to both egress records: one trace, each span the child of
// the one before, every record carrying the span that wrote it.
func TestTracingFollowsAMessageFromIngressThroughATimerToEgressInOneTrace(t *testing.T) {
	topo, reg := unitCounterApp()
	r, exp := tracedRig(t, topo, reg)
	part := partitionFor("a", topo.PartitionCount())
	r.consume("unit-in", part, "a", str("later:10s"), traceHeader(wire.Trace{Parent: upstreamParent, State: "vendor=x"})...)
	r.commit()

	ingress := spansNamed(exp, "ingress unit-in")
	if len(ingress) != 1 {
		t.Fatalf("%d ingress spans, want 1", len(ingress))
	}
	upstream := spanContextOf(upstreamParent, "vendor=x")
	checkChild(t, "ingress span", ingress[0], upstream)
	invokes := spansNamed(exp, "invoke unit/counter")
	if len(invokes) != 1 {
		t.Fatalf("%d invocation spans after the ingress record, want 1", len(invokes))
	}
	first := invokes[0]
	checkChild(t, "first invocation", first, ingress[0].SpanContext)
	for key, want := range map[attribute.Key]string{attrFunctionType: "unit/counter", attrFunctionID: "a", attrKind: "local", attrAttempt: "1", attrOutcome: outcomeOK, attrCallerType: ""} {
		if got := attr(first, key); got != want {
			t.Errorf("first invocation: %s = %q, want %q", key, got, want)
		}
	}
	egress := r.fk.all("unit-out")
	if len(egress) != 1 {
		t.Fatalf("%d egress records, want 1", len(egress))
	}
	checkRecordTrace(t, "first egress record", egress[0].headers, first.SpanContext)

	timers := r.fk.all(string(topo.TimersTopic()))
	if len(timers) != 1 {
		t.Fatalf("%d timer records, want 1", len(timers))
	}
	tm, err := wire.DecodeTimer(timers[0].value)
	if err != nil {
		t.Fatal(err)
	}
	checkRecordTrace(t, "timer", traceHeader(tm.Message.Trace), first.SpanContext)

	loop := r.fireDelayed(10 * time.Second)
	checkRecordTrace(t, "loop record of the timer", loop[0].headers, first.SpanContext)
	if env, err := wire.DecodeEnvelope(loop[0].value); err != nil || env.Trace != (wire.Trace{}) {
		t.Errorf("loop record envelope: %+v, %v; want the trace context in the headers only", env.Trace, err)
	}

	// the loop record as the owner of its partition consumes it
	r.consume(string(topo.LoopTopic()), part, "a", loop[0].value, loop[0].headers...)
	r.commit()
	invokes = spansNamed(exp, "invoke unit/counter")
	if len(invokes) != 2 {
		t.Fatalf("%d invocation spans after the delayed message, want 2", len(invokes))
	}
	second := invokes[1]
	checkChild(t, "invocation of the delayed message", second, first.SpanContext)
	if c, id := attr(second, attrCallerType), attr(second, attrCallerID); c != "unit/counter" || id != "a" {
		t.Errorf("invocation of the delayed message: caller %s/%s, want unit/counter/a", c, id)
	}
	egress = r.fk.all("unit-out")
	if len(egress) != 2 {
		t.Fatalf("%d egress records, want 2", len(egress))
	}
	checkRecordTrace(t, "second egress record", egress[1].headers, second.SpanContext)
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID() != upstream.TraceID() {
			t.Errorf("span %s %s is in trace %s, want the producer's %s", s.Name, s.SpanContext.SpanID(), s.SpanContext.TraceID(), upstream.TraceID())
		}
	}
}

// tracedRetry sends msgs to x of flakyApp, whose first invocation fails,
// with tracing on, and commits; then retries x after its backoff, and
// commits.
func tracedRetry(t *testing.T, msgs ...string) (*cycleRig, *tracetest.InMemoryExporter) {
	t.Helper()
	topo, reg := flakyApp(map[string]int{"x": 1})
	r, exp := tracedRig(t, topo, reg, WithRetries(3, 10*time.Millisecond))
	for _, m := range msgs {
		r.ingress("unit-in", "x", str(m))
	}
	r.commit()
	r.clock.Advance(10 * time.Millisecond)
	if err := r.s.retryParked(); err != nil {
		t.Fatal(err)
	}
	r.commit()
	return r, exp
}

// Each attempt of a failing invocation is a span of its own (attempt 1
// failed, attempt 2 ok), a child of the span that sent the message also
// when the retry comes from the inbox; a message parked behind it has a
// parked span, then its invocation's; a dead letter carries the trace
// context of the attempt that gave up.
func TestTracingRecordsEachAttemptAndTheDeadLetterCarriesItsTrace(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		r, exp := tracedRetry(t, "1")
		ingress := spansNamed(exp, "ingress unit-in")
		invokes := spansNamed(exp, "invoke unit/flaky")
		if len(ingress) != 1 || len(invokes) != 2 {
			t.Fatalf("%d ingress and %d invocation spans, want 1 and 2", len(ingress), len(invokes))
		}
		if ingress[0].Parent.IsValid() {
			t.Errorf("ingress span of a record without traceparent has parent %s, want a new trace", ingress[0].Parent.SpanID())
		}
		for i, want := range []struct{ attempt, outcome string }{{"1", outcomeFailed}, {"2", outcomeOK}} {
			s := invokes[i]
			checkChild(t, "attempt "+want.attempt, s, ingress[0].SpanContext)
			if a, o := attr(s, attrAttempt), attr(s, attrOutcome); a != want.attempt || o != want.outcome {
				t.Errorf("span %d: attempt %s outcome %s, want attempt %s outcome %s", i, a, o, want.attempt, want.outcome)
			}
		}
		if st := invokes[0].Status; st.Code != codes.Error || !strings.HasSuffix(st.Description, "not now") {
			t.Errorf("failed attempt's status %v %q, want an error with the function's", st.Code, st.Description)
		}
		egress := r.fk.all("unit-out")
		if len(egress) != 1 {
			t.Fatalf("%d egress records, want 1", len(egress))
		}
		checkRecordTrace(t, "egress record of the retry", egress[0].headers, invokes[1].SpanContext)
	})
	t.Run("parked behind a failed one", func(t *testing.T) {
		r, exp := tracedRetry(t, "1", "2")
		ingress := spansNamed(exp, "ingress unit-in")
		if len(ingress) != 2 {
			t.Fatalf("%d ingress spans, want 2", len(ingress))
		}
		// the second message's deliveries: parked, then invoked
		var second []tracetest.SpanStub
		for _, s := range spansNamed(exp, "invoke unit/flaky") {
			if s.Parent.SpanID() == ingress[1].SpanContext.SpanID() {
				second = append(second, s)
			}
		}
		if len(second) != 2 {
			t.Fatalf("%d spans of the second message, want 2 (parked, then invoked)", len(second))
		}
		for i, want := range []struct{ attempt, outcome string }{{"", outcomeParked}, {"1", outcomeOK}} {
			if a, o := attr(second[i], attrAttempt), attr(second[i], attrOutcome); a != want.attempt || o != want.outcome {
				t.Errorf("second message's span %d: attempt %q outcome %s, want attempt %q outcome %s", i, a, o, want.attempt, want.outcome)
			}
		}
		egress := r.fk.all("unit-out")
		if len(egress) != 2 || string(egress[1].value) != "x:2" {
			t.Fatalf("egress %q, want x:1, x:2", r.values("unit-out"))
		}
		checkRecordTrace(t, "egress record of the parked message", egress[1].headers, second[1].SpanContext)
	})
	t.Run("dead-lettered", func(t *testing.T) {
		topo, reg := unitCounterApp()
		r, exp := tracedRig(t, topo, reg)
		r.consume("unit-in", partitionFor("b", topo.PartitionCount()), "b", str("fail"), traceHeader(wire.Trace{Parent: upstreamParent})...)
		r.commit()
		invokes := spansNamed(exp, "invoke unit/counter")
		if len(invokes) != 1 {
			t.Fatalf("%d invocation spans, want 1", len(invokes))
		}
		s := invokes[0]
		if o, st := attr(s, attrOutcome), s.Status; o != outcomeDeadLettered || st.Code != codes.Error || !strings.HasSuffix(st.Description, "refused") {
			t.Errorf("span outcome %s status %v %q, want dead-lettered with the function's error", o, st.Code, st.Description)
		}
		dlq := r.fk.all(string(topo.DLQTopic()))
		if len(dlq) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dlq))
		}
		checkRecordTrace(t, "dead letter", dlq[0].headers, s.SpanContext)
		if n := len(r.fk.all("unit-out")); n != 0 {
			t.Errorf("%d egress records of the failed invocation, want none", n)
		}
	})
}

// A record whose traceparent does not parse (bad version, zero ids, wrong
// length, garbage) is processed as if it had none: a new trace, never a
// dead letter.
func TestTracingMalformedTraceparentIsProcessedInANewTrace(t *testing.T) {
	for _, bad := range []string{
		"garbage",
		"",
		"ff-" + upstreamTrace + "-" + upstreamSpan + "-01",
		"00-00000000000000000000000000000000-" + upstreamSpan + "-01",
		"00-" + upstreamTrace + "-0000000000000000-01",
		"00-" + upstreamTrace[:20] + "-" + upstreamSpan + "-01",
		"00-" + strings.ToUpper(upstreamTrace) + "-" + upstreamSpan + "-01",
		"00-" + upstreamTrace + "-" + upstreamSpan + "-01-extra\x00\xff",
	} {
		t.Run(bad, func(t *testing.T) {
			topo, reg := unitCounterApp()
			r, exp := tracedRig(t, topo, reg)
			hs := []header{{Key: []byte(wire.TraceParentHeader), Value: []byte(bad)}, {Key: []byte(wire.TraceStateHeader), Value: []byte("=;=,")}}
			r.consume("unit-in", partitionFor("a", topo.PartitionCount()), "a", str("x"), hs...)
			r.commit()
			if n := len(r.fk.all(string(topo.DLQTopic()))); n != 0 {
				t.Fatalf("%d dead letters, want none", n)
			}
			if got := r.values("unit-out"); len(got) != 1 || got[0] != "a=1" {
				t.Fatalf("egress %q, want a=1: the record processed normally", got)
			}
			ingress := spansNamed(exp, "ingress unit-in")
			invokes := spansNamed(exp, "invoke unit/counter")
			if len(ingress) != 1 || len(invokes) != 1 {
				t.Fatalf("%d ingress and %d invocation spans, want 1 and 1", len(ingress), len(invokes))
			}
			if ingress[0].Parent.IsValid() {
				t.Errorf("ingress span has parent %s of trace %s, want a new trace", ingress[0].Parent.SpanID(), ingress[0].Parent.TraceID())
			}
			checkChild(t, "invocation", invokes[0], ingress[0].SpanContext)
			checkRecordTrace(t, "egress record", r.fk.all("unit-out")[0].headers, invokes[0].SpanContext)
		})
	}
}

// With tracing off (the default) no record gets a trace context: not the
// loop, egress, timer or dead-letter records, also when the ingress record
// has a traceparent; and the tracer's hooks cost no allocation.
func TestTracingOffAddsNoTraceContextToAnyRecord(t *testing.T) {
	topo, reg := unitCounterApp()
	r := newCycleRig(t, topo, reg)
	in := traceHeader(wire.Trace{Parent: upstreamParent, State: "vendor=x"})
	r.consume("unit-in", partitionFor("a", topo.PartitionCount()), "a", str("later:10s"), in...)
	r.consume("unit-in", partitionFor("b", topo.PartitionCount()), "b", str("fail"), in...)
	r.commit()
	loop := r.fireDelayed(10 * time.Second)
	// a loop record with a trace context, as a traced instance writes it
	r.consume(string(topo.LoopTopic()), partitionFor("a", topo.PartitionCount()), "a", loop[0].value, in...)
	r.commit()
	checkNoTraceContext(t, r, topo, func(topic string, i int) bool {
		return topic == "unit-in" || topic == string(topo.LoopTopic()) && i == 1
	})
	if got := r.values("unit-out"); len(got) != 2 {
		t.Errorf("egress %q, want a=1 and a=2", got)
	}

	var tr *tracer // tracing off
	env := wire.Envelope{Target: functions.Address{Type: counterFnU, ID: "a"}, Argument: functions.StringType.Of("x"), Trace: wire.Trace{Parent: upstreamParent}}
	m := &record{Topic: "unit-in", trace: env.Trace}
	if n := testing.AllocsPerRun(100, func() {
		d := tr.ingress(context.Background(), m)
		_ = d.trace()
		d.end(outcomeOK, "")
		d = tr.invocation(context.Background(), env, "local", 1)
		_ = d.context(context.Background())
		_ = traceHeaders(nil, d.trace())
		d.end(outcomeFailed, "x")
		_ = tr.undelivered(context.Background(), env, outcomeParked, "")
		_ = m.traced(wire.Trace{Parent: upstreamParent})
	}); n != 0 {
		t.Errorf("tracing off: the tracer's hooks allocate %v times, want 0", n)
	}
}

// With tracing off a parked message's inbox entries and its retry's
// records get no trace context either.
func TestTracingOffAddsNoTraceContextToInboxEntries(t *testing.T) {
	topo, reg := flakyApp(map[string]int{"x": 1})
	r := newCycleRig(t, topo, reg, WithRetries(3, 10*time.Millisecond))
	in := traceHeader(wire.Trace{Parent: upstreamParent, State: "vendor=x"})
	r.consume("unit-in", partitionFor("x", topo.PartitionCount()), "x", str("1"), in...)
	r.consume("unit-in", partitionFor("x", topo.PartitionCount()), "x", str("2"), in...)
	r.commit()
	if n := len(r.fk.all(string(topo.InboxTopic()))); n != 2 {
		t.Fatalf("%d inbox records, want x's two messages parked", n)
	}
	r.clock.Advance(10 * time.Millisecond)
	if err := r.s.retryParked(); err != nil {
		t.Fatal(err)
	}
	r.commit()
	if got := r.values("unit-out"); len(got) != 2 {
		t.Fatalf("egress %q, want x:1 and x:2 after the retry", got)
	}
	checkNoTraceContext(t, r, topo, func(topic string, _ int) bool { return topic == "unit-in" })
}

// A delayed message written while tracing was on, fired by an instance
// with tracing off, goes to the loop topic without its trace context.
func TestTracingOffSendsNoTraceContextOfATimerWrittenWithTracingOn(t *testing.T) {
	topo, reg := unitCounterApp()
	traced, _ := tracedRig(t, topo, reg)
	traced.ingress("unit-in", "a", str("later:10s"))
	traced.commit()
	tm, err := wire.DecodeTimer(traced.fk.all(string(topo.TimersTopic()))[0].value)
	if err != nil || tm.Message.Trace.Parent == "" {
		t.Fatalf("timer written with tracing on: trace %+v, %v; want a trace context", tm.Message.Trace, err)
	}
	// the same cluster, a new instance without tracing
	p, err := New([]string{"fake:9092"}, topo, reg, WithClock(traced.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	r := &cycleRig{t: t, p: p, fk: traced.fk, clock: traced.clock, s: rigSession(t, p, traced.fk)}
	loop := r.fireDelayed(10 * time.Second)
	if v, ok := headerValue(loop[0].headers, wire.TraceParentHeader); ok {
		t.Errorf("loop record of the timer has traceparent %q with tracing off, want none", v)
	}
}

// checkNoTraceContext reports a trace context in a header of any record
// of the fake, in an envelope of the loop and timers topics, and in an
// inbox entry; except in the records that the test wrote (the i-th record
// of topic, in the order of fakeKafka.all).
func checkNoTraceContext(t *testing.T, r *cycleRig, topo topology.Topology, written func(topic string, i int) bool) {
	t.Helper()
	r.fk.mu.Lock()
	topics := make([]string, 0, len(r.fk.info))
	for name := range r.fk.info {
		topics = append(topics, name)
	}
	r.fk.mu.Unlock()
	for _, topic := range topics {
		for i, rec := range r.fk.all(topic) {
			if written(topic, i) {
				continue
			}
			for _, key := range []string{wire.TraceParentHeader, wire.TraceStateHeader} {
				if v, ok := headerValue(rec.headers, key); ok {
					t.Errorf("%s record %d has header %s %q, want none with tracing off", topic, i, key, v)
				}
			}
			if rec.value == nil {
				continue
			}
			var tc wire.Trace
			switch topic {
			case string(topo.LoopTopic()):
				env, err := wire.DecodeEnvelope(rec.value)
				if err != nil {
					t.Fatal(err)
				}
				tc = env.Trace
			case string(topo.TimersTopic()):
				tm, err := wire.DecodeTimer(rec.value)
				if err != nil {
					t.Fatal(err)
				}
				tc = tm.Message.Trace
			case string(topo.InboxTopic()):
				e, err := wire.DecodeInboxEntry(rec.value)
				if err != nil {
					t.Fatal(err)
				}
				tc = e.Message.Trace
			}
			if tc != (wire.Trace{}) {
				t.Errorf("%s record %d carries trace context %+v, want none with tracing off", topic, i, tc)
			}
		}
	}
}

// A Go function's context carries the span of its invocation, so the
// spans a function starts are its children.
func TestTracingGoFunctionContextCarriesItsInvocationSpan(t *testing.T) {
	var seen trace.SpanContext
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: "unit/look",
		Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
			seen = trace.SpanContextFromContext(ctx)
			return nil
		}),
	})
	topo := topology.Topology{
		App: "unit", Partitions: 2, Functions: []functions.TypeName{"unit/look"},
		Ingresses: []topology.Ingress{{Topic: "unit-in", ValueType: functions.StringType.Name(), Targets: []functions.TypeName{"unit/look"}}},
	}
	r, exp := tracedRig(t, topo, reg)
	r.ingress("unit-in", "a", str("x"))
	r.commit()
	invokes := spansNamed(exp, "invoke unit/look")
	if len(invokes) != 1 {
		t.Fatalf("%d invocation spans, want 1", len(invokes))
	}
	if !seen.IsValid() || seen.SpanID() != invokes[0].SpanContext.SpanID() {
		t.Errorf("the function's context has span %s, want its invocation's %s", seen.SpanID(), invokes[0].SpanContext.SpanID())
	}
}
