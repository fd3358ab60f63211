package processor

import (
	"context"
	"strconv"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/stateloop/stateloop/internal/wire"
)

// Tracing.
//
// With WithTracerProvider the processor makes an OpenTelemetry span for
// each ingress record it routes and for each delivery of a message to an
// address, and carries the W3C trace context of the span that sent a
// message with the message (wire.Trace): in the headers of loop, reply,
// egress and dead-letter records, in the envelope of delayed messages and
// inbox entries, in memory for local deliveries, and in the traceparent
// header of a remote function's HTTP request. A delivery's span is a child
// of the span that sent the message, so the hops of a message form one
// trace. Without it (tracer nil) none of this happens: no spans, no
// headers, no allocations.
//
// The spans record attempts, not committed work: an invocation whose
// transaction aborts is invoked again when the transaction is processed
// again, and both spans are exported.

// tracerName names the processor's tracer (the instrumentation scope).
const tracerName = "github.com/stateloop/stateloop/processor"

// The outcomes of a delivery, the span attribute stateloop.outcome.
const (
	// outcomeOK: invoked, and its effects applied.
	outcomeOK = "ok"
	// outcomeFailed: the attempt failed; the address is parked and the
	// message waits in its inbox for another attempt.
	outcomeFailed = "failed"
	// outcomeDeadLettered: the message went to the dead-letter topic.
	outcomeDeadLettered = "dead-lettered"
	// outcomeParked: not invoked now; the message waits in its address's
	// inbox behind an earlier one, or for its type's table.
	outcomeParked = "parked"
	// outcomeDuplicate: not invoked; its idempotency key was seen.
	outcomeDuplicate = "duplicate"
	// outcomeAborted: a remote call whose result was dropped (its
	// transaction aborted, or its session ended); the message is sent
	// again from its inbox.
	outcomeAborted = "aborted"
)

// The attributes of delivery spans.
const (
	attrFunctionType = attribute.Key("stateloop.function.type")
	attrFunctionID   = attribute.Key("stateloop.function.id")
	attrKind         = attribute.Key("stateloop.function.kind") // local, remote
	attrCallerType   = attribute.Key("stateloop.caller.type")
	attrCallerID     = attribute.Key("stateloop.caller.id")
	attrAttempt      = attribute.Key("stateloop.attempt") // 1 for the first
	attrOutcome      = attribute.Key("stateloop.outcome")
)

// Tracing reports whether the processor traces: whether it was given a
// TracerProvider with WithTracerProvider. Whoever writes messages for it
// (an HTTP ingress) passes trace context headers on only then.
func (p *Processor) Tracing() bool { return p.tr != nil }

// tracer makes the processor's spans. A nil *tracer is tracing off: its
// methods return deliveries that do nothing.
type tracer struct{ t trace.Tracer }

func newTracer(tp trace.TracerProvider) *tracer {
	if tp == nil {
		return nil
	}
	return &tracer{t: tp.Tracer(tracerName)}
}

// delivery is an open span; the zero value (tracing off) does nothing.
type delivery struct{ span trace.Span }

// ingress starts the span of routing the ingress record m: a child of the
// span whose context m carries, or a new trace.
func (tr *tracer) ingress(ctx context.Context, m *record) delivery {
	if tr == nil {
		return delivery{}
	}
	_, sp := tr.t.Start(withParent(ctx, m.trace), "ingress "+m.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", m.Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(int(m.Partition))),
			attribute.Int64("messaging.kafka.offset", m.Offset)))
	return delivery{sp}
}

// invocation starts the span of an attempt to invoke env.Target with env
// (kind "local" or "remote"): a child of the span that sent env.
func (tr *tracer) invocation(ctx context.Context, env wire.Envelope, kind string, attempt int32) delivery {
	if tr == nil {
		return delivery{}
	}
	sk := trace.SpanKindConsumer
	if kind == "remote" {
		// its HTTP request's server span is its child
		sk = trace.SpanKindClient
	}
	_, sp := tr.t.Start(withParent(ctx, env.Trace), "invoke "+string(env.Target.Type), trace.WithSpanKind(sk),
		trace.WithAttributes(addressAttrs(env, attrKind.String(kind), attrAttempt.Int(int(attempt)))...))
	return delivery{sp}
}

// undelivered records a delivery of env that invoked nothing (dead-lettered
// before an invocation, parked, a duplicate) as a span that ends at once,
// with reason as its error status if given, and returns its trace context.
func (tr *tracer) undelivered(ctx context.Context, env wire.Envelope, outcome, reason string) wire.Trace {
	if tr == nil {
		return wire.Trace{}
	}
	_, sp := tr.t.Start(withParent(ctx, env.Trace), "invoke "+string(env.Target.Type), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(addressAttrs(env)...))
	d := delivery{sp}
	tc := d.trace()
	d.end(outcome, reason)
	return tc
}

func addressAttrs(env wire.Envelope, more ...attribute.KeyValue) []attribute.KeyValue {
	attrs := append([]attribute.KeyValue{attrFunctionType.String(string(env.Target.Type)), attrFunctionID.String(env.Target.ID)}, more...)
	if env.Caller != nil {
		attrs = append(attrs, attrCallerType.String(string(env.Caller.Type)), attrCallerID.String(env.Caller.ID))
	}
	return attrs
}

// context returns ctx with the span, for the invoked function.
func (d delivery) context(ctx context.Context) context.Context {
	if d.span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, d.span)
}

// trace returns the span's trace context, which the messages and records
// it sends carry.
func (d delivery) trace() wire.Trace {
	if d.span == nil {
		return wire.Trace{}
	}
	var tc wire.Trace
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), d.span.SpanContext()), traceCarrier{&tc})
	return tc
}

// end ends the span with its outcome; a reason makes its status an error.
func (d delivery) end(outcome, reason string) {
	if d.span == nil {
		return
	}
	d.span.SetAttributes(attrOutcome.String(outcome))
	if reason != "" {
		d.span.SetStatus(codes.Error, reason)
	}
	d.span.End()
}

// withParent returns ctx with the span context tc names as the parent of
// spans started from it; ctx itself if tc names none (a new trace).
func withParent(ctx context.Context, tc wire.Trace) context.Context {
	if tc.Parent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, traceCarrier{&tc})
}

// traceCarrier is a wire.Trace as a propagation.TextMapCarrier.
type traceCarrier struct{ tc *wire.Trace }

func (c traceCarrier) Get(key string) string {
	switch key {
	case wire.TraceParentHeader:
		return c.tc.Parent
	case wire.TraceStateHeader:
		return c.tc.State
	}
	return ""
}

func (c traceCarrier) Set(key, value string) {
	switch key {
	case wire.TraceParentHeader:
		c.tc.Parent = value
	case wire.TraceStateHeader:
		c.tc.State = value
	}
}

func (c traceCarrier) Keys() []string { return []string{wire.TraceParentHeader, wire.TraceStateHeader} }

// traceHeaders appends the Kafka headers of tc to hs (none for an empty
// tc).
func traceHeaders(hs []header, tc wire.Trace) []header {
	if tc.Parent == "" {
		return hs
	}
	hs = append(hs, header{Key: []byte(wire.TraceParentHeader), Value: []byte(tc.Parent)})
	if tc.State != "" {
		hs = append(hs, header{Key: []byte(wire.TraceStateHeader), Value: []byte(tc.State)})
	}
	return hs
}

// consumed is the record of a consumed message; with tracing on it has the
// trace context of the message's headers. With tracing off the headers are
// not read: a traceparent that comes in goes no further.
func (p *Processor) consumed(m *sarama.ConsumerMessage) *record {
	rec := &record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
	if p.tr != nil {
		rec.trace = traceOf(m.Headers)
	}
	return rec
}

// traceOf reads the trace context of a consumed record's headers (of
// several headers of one name, the last).
func traceOf(hs []*sarama.RecordHeader) wire.Trace {
	var tc wire.Trace
	for _, h := range hs {
		if h == nil {
			continue
		}
		switch string(h.Key) {
		case wire.TraceParentHeader:
			tc.Parent = string(h.Value)
		case wire.TraceStateHeader:
			tc.State = string(h.Value)
		}
	}
	return tc
}

// traced returns r with the trace context tc for its dead letters: r
// itself when it has tc already (always so with tracing off), else a copy.
func (r *record) traced(tc wire.Trace) *record {
	if r == nil || r.trace == tc {
		return r
	}
	c := *r
	c.trace = tc
	return &c
}
