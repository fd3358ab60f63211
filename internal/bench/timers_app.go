package bench

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// The application of the delayed-messages bench (stateloop-bench --timers).
//
// bench/scheduler gets a request from its ingress topic and sends one
// message to bench/sink/<its own id>: after a delay (ctx.SendAfter), or
// at once (ctx.Send) for the plain baseline. bench/sink writes one egress
// record per message, stamped with the time it was invoked. A second
// ingress topic feeds plain messages straight to bench/sink, the other
// baseline. Neither function has state, so the figures show the cost of
// the messages and their timers, not of state.
const (
	// SchedulerType sends the delayed messages.
	SchedulerType functions.TypeName = "bench/scheduler"
	// SinkType receives them.
	SinkType functions.TypeName = "bench/sink"
	// TimerOutEgress is the sink's egress.
	TimerOutEgress functions.TypeName = "bench/timer-out"
)

var (
	// requestType is the scheduler's input: phase (1 byte), sequence
	// number (8), and the delay in milliseconds (8, signed; see
	// delayBurst and delayNone).
	requestType = functions.NewType("bench/timer-request", codec.Bytes())
	// dueType is the message to the sink: phase (1), sequence number (8),
	// its due time (8, Unix nanoseconds, a whole millisecond) and the time
	// the scheduler sent it (8, Unix nanoseconds); both 0 for a plain
	// message.
	dueType = functions.NewType("bench/timer-message", codec.Bytes())
)

// Special delays of a request.
const (
	// delayBurst: due at the burst's due time (timerApp.burstDue).
	delayBurst = -1
	// delayNone: a plain message, sent with ctx.Send.
	delayNone = -2
)

// Record layouts: a request is 17 bytes, a message 25; the sink's output
// is the message followed by the time the sink was invoked (8 bytes, Unix
// nanoseconds).
const (
	timerReqLen = 17
	timerMsgLen = 25
	timerOutLen = timerMsgLen + 8
)

// timerRequest returns a scheduler request.
func timerRequest(phase byte, seq uint64, delayMs int64) []byte {
	b := make([]byte, timerReqLen)
	b[0] = phase
	binary.BigEndian.PutUint64(b[1:], seq)
	binary.BigEndian.PutUint64(b[9:], uint64(delayMs))
	return b
}

// timerMessage returns a message to the sink.
func timerMessage(phase byte, seq uint64, due, sent int64) []byte {
	b := make([]byte, timerMsgLen)
	b[0] = phase
	binary.BigEndian.PutUint64(b[1:], seq)
	binary.BigEndian.PutUint64(b[9:], uint64(due))
	binary.BigEndian.PutUint64(b[17:], uint64(sent))
	return b
}

// timerApp is the application with the state the scheduler reads.
type timerApp struct {
	topo topology.Topology
	reg  *functions.Registry
	// burstDue is the due time (Unix nanoseconds, a whole millisecond) of
	// the burst's requests; set before they become visible.
	burstDue atomic.Int64
	// now is the scheduler's clock and sinkNow the sink's (time.Now;
	// tests skew the sink's to see the bench catch early messages).
	now, sinkNow func() time.Time
}

// newTimerApp returns the application: ingress topic in routes to
// bench/scheduler, topic plain to bench/sink, and the sink writes to out.
func newTimerApp(app, in, plain, out string, partitions int32) *timerApp {
	a := &timerApp{now: time.Now, sinkNow: time.Now}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     SchedulerType,
		Function: functions.Router(functions.Handle(requestType, a.schedule)),
	})
	reg.MustRegister(functions.Spec{
		Type:     SinkType,
		Function: functions.Router(functions.Handle(dueType, a.sink)),
		Egresses: []functions.TypeName{TimerOutEgress},
	})
	a.reg = reg
	a.topo = topology.Topology{
		App:        app,
		Partitions: partitions,
		Functions:  []functions.TypeName{SchedulerType, SinkType},
		Ingresses: []topology.Ingress{
			{Topic: topology.Topic(in), ValueType: requestType.Name(), Targets: []functions.TypeName{SchedulerType}},
			{Topic: topology.Topic(plain), ValueType: dueType.Name(), Targets: []functions.TypeName{SinkType}},
		},
		Egresses: []topology.Egress{{ID: TimerOutEgress, Topics: []topology.Topic{topology.Topic(out)}}},
	}
	return a
}

var (
	errBadRequest = functions.Permanent(errors.New("bench: a timer request of the wrong length"))
	errBadMessage = functions.Permanent(errors.New("bench: a timer message of the wrong length"))
)

// schedule sends the request's message to the sink of the same id. The
// due time is rounded up to a whole millisecond, and the delay passed to
// SendAfter is measured from the function's clock reading, which comes
// before the runtime's: the runtime's due time (its clock when the
// invocation returns, plus the delay, in milliseconds) is never before the
// due time in the message, so the bench's "never early" check is exact.
func (a *timerApp) schedule(ctx functions.Context, v []byte) error {
	if len(v) != timerReqLen {
		return errBadRequest
	}
	to := functions.Address{Type: SinkType, ID: ctx.Self().ID}
	seq := binary.BigEndian.Uint64(v[1:])
	delayMs := int64(binary.BigEndian.Uint64(v[9:]))
	if delayMs == delayNone {
		ctx.Send(to, dueType.Of(timerMessage(v[0], seq, 0, 0)))
		return nil
	}
	now := a.now()
	var due int64
	if delayMs == delayBurst {
		due = a.burstDue.Load()
	} else {
		due = ceilMillis(now.UnixNano() + delayMs*int64(time.Millisecond))
	}
	d := max(time.Duration(due-now.UnixNano()), 0)
	ctx.SendAfter(d, to, dueType.Of(timerMessage(v[0], seq, due, now.UnixNano())))
	return nil
}

// sink writes the message followed by the time of the invocation.
func (a *timerApp) sink(ctx functions.Context, v []byte) error {
	if len(v) != timerMsgLen {
		return errBadMessage
	}
	out := make([]byte, timerOutLen)
	copy(out, v)
	binary.BigEndian.PutUint64(out[timerMsgLen:], uint64(a.sinkNow().UnixNano()))
	ctx.SendEgress(TimerOutEgress, functions.KafkaMessage("", ctx.Self().ID, out))
	return nil
}

// ceilMillis rounds Unix nanoseconds up to a whole millisecond.
func ceilMillis(ns int64) int64 {
	const ms = int64(time.Millisecond)
	return (ns + ms - 1) / ms * ms
}
