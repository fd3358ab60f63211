package functionstest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/topology"
)

// DefaultMaxInvocations is how many invocations one call of a
// [TopologyDriver] method may make without [WithMaxInvocations].
const DefaultMaxInvocations = 10_000

// ErrNoReply is wrapped by the error of [TopologyDriver.Request] when the
// request got no reply.
var ErrNoReply = errors.New("functionstest: no reply")

// TopologyDriver runs a whole application in memory, as Kafka Streams'
// TopologyTestDriver does: records piped into its ingress topics go
// through the topology's routers to the registered functions, the messages
// those send each other are delivered, delayed messages wait for the fake
// clock, and egress records come out by topic. It applies the runtime's
// own rules ([topology.Topology.Route], [topology.Topology.EgressRecord],
// package functions/driver), so a mistake that the runtime turns into a
// dead letter is a dead letter here too.
//
// Create one with [NewTopologyDriver]. Its methods are safe for concurrent
// use, but must not be called from inside a function it runs (except
// [StateOf], [TopologyDriver.Records] and the other readers).
type TopologyDriver struct {
	topo topology.Topology
	reg  *functions.Registry
	h    *Harness // state, clock and delayed messages
	max  int

	run sync.Mutex // held while a method delivers

	mu       sync.Mutex
	offsets  map[topology.Topic]int64 // next offset of each ingress topic
	records  map[topology.Topic][]Record
	read     map[topology.Topic]int // how many ReadRecords returned
	dead     []DeadLetter
	requests int
	replies  map[string][]functions.Message // by the id of a Request's caller
}

// Record is a record that the application wrote to an egress topic.
type Record struct {
	topology.EgressRecord
	// Egress is the egress the function sent the record to.
	Egress functions.TypeName
	// From is the address whose invocation wrote it.
	From functions.Address
	// Time is the driver's clock when it was written.
	Time time.Time
}

// DeadLetter is what the runtime would write to the application's
// dead-letter topic: an ingress record that could not be routed, or a
// message whose invocation failed. It is also an error, so that the errors
// of the driver's methods can be inspected with errors.As and errors.Is.
type DeadLetter struct {
	// Record is the ingress record that could not be routed; nil for a
	// message.
	Record *topology.Record
	// To, Caller and Message are the message that could not be delivered
	// (zero for a record). Caller is nil for a message from an ingress or
	// from [TopologyDriver.Send].
	To      functions.Address
	Caller  *functions.Address
	Message functions.Message
	// Err is why: the error of the router, of the invocation (a
	// *[functions.InvocationError]), or of the runtime's checks.
	Err error
}

func (d DeadLetter) Error() string {
	if d.Record != nil {
		return fmt.Sprintf("functionstest: dead letter: record %s/%d/%d: %v", d.Record.Topic, d.Record.Partition, d.Record.Offset, d.Err)
	}
	from := "the test"
	if d.Caller != nil {
		from = d.Caller.String()
	}
	return fmt.Sprintf("functionstest: dead letter: message %s to %s from %s: %v", d.Message.TypeName(), d.To, from, d.Err)
}

func (d DeadLetter) Unwrap() error { return d.Err }

// DriverOption configures a [TopologyDriver]; pass options to
// [NewTopologyDriver].
type DriverOption interface {
	applyDriver(d *TopologyDriver)
}

type maxInvocations int

func (n maxInvocations) applyDriver(d *TopologyDriver) { d.max = int(n) }

// WithMaxInvocations bounds the invocations that one call of Pipe, Send,
// Request or Advance may make (default [DefaultMaxInvocations]): beyond it
// the call stops with an error wrapping [ErrTooManyInvocations], so that
// functions that message each other without end fail the test instead of
// hanging it.
func WithMaxInvocations(n int) DriverOption { return maxInvocations(n) }

// NewTopologyDriver returns a driver for the application that topo and reg
// make: the values app.Main's build function returns. The state of every
// address starts empty and the clock at [Epoch].
//
// It checks the application as the runtime does when it starts
// (processor.New), and returns every problem at once: an invalid
// topology, a registered function type the topology lacks, an egress that
// a Spec declares and the topology does not have, and a function type of
// the topology that is not registered (the driver runs Go functions only;
// remote functions cannot be part of its application).
func NewTopologyDriver(topo topology.Topology, reg *functions.Registry, opts ...DriverOption) (*TopologyDriver, error) {
	if reg == nil {
		return nil, errors.New("functionstest: NewTopologyDriver: nil registry")
	}
	d := &TopologyDriver{topo: topo, reg: reg, max: DefaultMaxInvocations,
		offsets: make(map[topology.Topic]int64), records: make(map[topology.Topic][]Record),
		read: make(map[topology.Topic]int), replies: make(map[string][]functions.Message)}
	for _, o := range opts {
		o.applyDriver(d)
	}
	errs := []error{topo.Validate(), topo.ValidateRegistry(reg), topo.ValidateServed(reg, nil)}
	if d.max < 1 {
		errs = append(errs, fmt.Errorf("functionstest: WithMaxInvocations(%d): want at least 1", d.max))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("functionstest: NewTopologyDriver: %w", err)
	}
	d.h = New(reg)
	return d, nil
}

func (d *TopologyDriver) harness() *Harness { return d.h }

// delivery is a message waiting to be delivered.
type delivery struct {
	to     functions.Address
	caller *functions.Address
	msg    functions.Message
}

// Pipe writes a record to the ingress topic topic, with key ("" for a
// record without a key) and value, and processes it as the runtime does:
// the ingress routes it to its addresses, their functions run, and the
// messages they send are delivered, with the sender as caller, until none
// are left. Messages are delivered first sent, first delivered, so the
// messages from one address to another arrive in the order sent, and each
// address gets one at a time, as in the runtime. Delayed messages wait for
// [TopologyDriver.Advance]. Records of one topic get partition 0 and
// offsets from 0 on.
//
// Each record is processed to the end before Pipe returns, so records are
// processed in the order piped. The runtime keeps no order between records
// of different topics (or partitions): do not let a test depend on one.
//
// It returns an error for a topic that is not an ingress of the
// application, and the dead letters of the record and of every message it
// caused, joined (each a [DeadLetter]; see also
// [TopologyDriver.DeadLetters]): a record the ingress cannot route, a
// message to a function type the application does not have, an invocation
// that fails. The other messages are delivered all the same, as in the
// runtime, which does not retry here: a failed invocation is a dead letter
// at once, with none of its effects. Past the invocation limit (see
// [WithMaxInvocations]) it stops with an error wrapping
// [ErrTooManyInvocations], leaving the other messages undelivered.
func (d *TopologyDriver) Pipe(topic topology.Topic, key string, value []byte) error {
	if _, ok := d.topo.Ingress(topic); !ok {
		return fmt.Errorf("functionstest: Pipe: topic %q is not an ingress of application %s; its ingresses: %v", topic, d.topo.App, d.ingressTopics())
	}
	d.run.Lock()
	defer d.run.Unlock()
	d.mu.Lock()
	rec := topology.Record{Topic: topic, Offset: d.offsets[topic], Value: value}
	d.offsets[topic]++
	d.mu.Unlock()
	if key != "" {
		rec.Key = []byte(key)
	}
	msgs, err := d.topo.Route(rec)
	if err != nil {
		return d.deadLetter(DeadLetter{Record: &rec, Err: err})
	}
	queue := make([]delivery, len(msgs))
	for i, m := range msgs {
		queue[i] = delivery{to: m.To, msg: m.Message}
	}
	return d.deliver(queue)
}

// PipeValue is [TopologyDriver.Pipe] with the value v encoded by c; it
// returns an error if v does not encode.
func PipeValue[T any](d *TopologyDriver, topic topology.Topic, key string, c codec.Codec[T], v T) error {
	b, err := c.Encode(v)
	if err != nil {
		return fmt.Errorf("functionstest: PipeValue to %s: %w", topic, err)
	}
	return d.Pipe(topic, key, b)
}

func (d *TopologyDriver) ingressTopics() []topology.Topic {
	var out []topology.Topic
	for _, in := range d.topo.Ingresses {
		out = append(out, in.Topic)
	}
	return out
}

// Send sends msg to the address to without a caller, as `stateloop send
// --to` does, and processes it and everything it causes as
// [TopologyDriver.Pipe] does; it returns the same errors. It returns an
// error at once, without sending, for an invalid address or a message
// that failed to encode.
func (d *TopologyDriver) Send(to functions.Address, msg functions.Message) error {
	if err := checkSend(to, msg); err != nil {
		return fmt.Errorf("functionstest: Send: %w", err)
	}
	d.run.Lock()
	defer d.run.Unlock()
	return d.deliver([]delivery{{to: to, msg: msg}})
}

func checkSend(to functions.Address, msg functions.Message) error {
	if err := to.Validate(); err != nil {
		return err
	}
	if err := msg.Err(); err != nil {
		return err
	}
	if _, err := functions.ParseTypeName(string(msg.TypeName())); err != nil {
		return fmt.Errorf("message: %w", err)
	}
	return nil
}

// Request sends msg to the address to as a request to the application's
// HTTP ingress with ?wait= does: its caller is an address of type
// [topology.HTTPCaller], so that ctx.Reply (or a message sent later to
// that address, by any function) answers it. It processes the message and
// everything it causes as [TopologyDriver.Pipe] does and returns the first
// reply. The error is that of Pipe, or one wrapping [ErrNoReply] when no
// reply came; a reply that would come later (after a delayed message) is
// not waited for, as an HTTP request that has given up does not.
func (d *TopologyDriver) Request(to functions.Address, msg functions.Message) (functions.Message, error) {
	if err := checkSend(to, msg); err != nil {
		return functions.Message{}, fmt.Errorf("functionstest: Request: %w", err)
	}
	d.run.Lock()
	defer d.run.Unlock()
	d.mu.Lock()
	d.requests++
	caller := functions.Address{Type: topology.HTTPCaller, ID: "functionstest/" + strconv.Itoa(d.requests)}
	d.replies[caller.ID] = []functions.Message{}
	d.mu.Unlock()
	err := d.deliver([]delivery{{to: to, caller: &caller, msg: msg}})
	d.mu.Lock()
	replies := d.replies[caller.ID]
	delete(d.replies, caller.ID)
	d.mu.Unlock()
	if len(replies) == 0 {
		return functions.Message{}, errors.Join(fmt.Errorf("%w to the message %s to %s", ErrNoReply, msg.TypeName(), to), err)
	}
	return replies[0], err
}

// Advance moves the driver's clock forward by dur. Every delayed message
// that comes due is delivered at its due time, in due order, with its
// sender as caller, and processed with everything it causes as
// [TopologyDriver.Pipe] does; delayed messages those send are delivered
// too when they come due within dur. State that expires in that time
// expires. It returns the dead letters, as Pipe does.
func (d *TopologyDriver) Advance(dur time.Duration) error {
	d.run.Lock()
	defer d.run.Unlock()
	var errs []error
	err := d.h.advance(dur, func(next Delayed) error {
		from := next.From
		err := d.deliver([]delivery{{to: next.To, caller: &from, msg: next.Message}})
		if errors.Is(err, ErrTooManyInvocations) {
			return err
		}
		errs = append(errs, err)
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// Now returns the driver's clock: [Epoch] at first, moved only by
// [TopologyDriver.Advance].
func (d *TopologyDriver) Now() time.Time { return d.h.Now() }

// Pending returns the delayed messages waiting for the clock, earliest due
// first.
func (d *TopologyDriver) Pending() []Delayed { return d.h.Pending() }

// deliver delivers queue and every message its deliveries send, first sent
// first delivered, and returns the dead letters it made, joined. d.run
// must be held.
func (d *TopologyDriver) deliver(queue []delivery) error {
	var errs []error
	for n := 0; len(queue) > 0; {
		next := queue[0]
		queue = queue[1:]
		if next.to.Type == topology.HTTPCaller {
			d.reply(next)
			continue
		}
		if n == d.max {
			queue = append([]delivery{next}, queue...)
			errs = append(errs, fmt.Errorf("%w: stopped after %d with %d message(s) undelivered, the next to %s (see WithMaxInvocations)",
				ErrTooManyInvocations, d.max, len(queue), next.to))
			break
		}
		if !d.topo.HasFunction(next.to.Type) {
			errs = append(errs, d.deadLetter(DeadLetter{To: next.to, Caller: next.caller, Message: next.msg,
				Err: fmt.Errorf("%w %s: the application has no such function type", functions.ErrUnknownFunction, next.to.Type)}))
			continue
		}
		n++
		var egress []Record
		res, err := d.h.invoke(next.caller, next.to, next.msg, func(e driver.Effects) error {
			now := d.h.Now()
			for _, m := range e.Egress {
				rec, err := d.topo.EgressRecord(m)
				if err != nil {
					return fmt.Errorf("invocation of %s sent an invalid egress record: %w", next.to, err)
				}
				egress = append(egress, Record{EgressRecord: rec, Egress: m.Egress, From: next.to, Time: now})
			}
			return nil
		})
		if err != nil {
			errs = append(errs, d.deadLetter(DeadLetter{To: next.to, Caller: next.caller, Message: next.msg, Err: err}))
			continue
		}
		d.mu.Lock()
		for _, r := range egress {
			d.records[r.Topic] = append(d.records[r.Topic], r)
		}
		d.mu.Unlock()
		from := next.to
		for _, m := range res.Messages {
			queue = append(queue, delivery{to: m.To, caller: &from, msg: m.Message})
		}
	}
	return errors.Join(errs...)
}

// reply keeps a message to an HTTP caller for the Request waiting for it;
// one for a caller nobody waits for is dropped, as the HTTP listener
// drops it.
func (d *TopologyDriver) reply(r delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if replies, ok := d.replies[r.to.ID]; ok {
		d.replies[r.to.ID] = append(replies, r.msg)
	}
}

// deadLetter records dl and returns it as an error.
func (d *TopologyDriver) deadLetter(dl DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = append(d.dead, dl)
	return dl
}

// DeadLetters returns every dead letter so far, in order.
func (d *TopologyDriver) DeadLetters() []DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dead)
}

// Records returns every record written to the egress topic topic so far,
// in the order written.
func (d *TopologyDriver) Records(topic topology.Topic) []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.records[topic])
}

// ReadRecords returns the records written to topic since the last
// ReadRecords of topic (or [ReadValues]), in the order written, as a
// consumer reads on from its position.
func (d *TopologyDriver) ReadRecords(topic topology.Topic) []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	recs := d.records[topic][d.read[topic]:]
	d.read[topic] = len(d.records[topic])
	return slices.Clone(recs)
}

// Values decodes the values of recs with c. It returns the values decoded
// before the first that does not decode, and that error.
func Values[T any](recs []Record, c codec.Codec[T]) ([]T, error) {
	out := make([]T, 0, len(recs))
	for _, r := range recs {
		v, err := c.Decode(r.Value)
		if err != nil {
			return out, fmt.Errorf("functionstest: value of the record %s from %s: %w", r.Topic, r.From, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// ReadValues is [Values] of [TopologyDriver.ReadRecords]: the values of
// the records written to topic since the last read, decoded with c.
func ReadValues[T any](d *TopologyDriver, topic topology.Topic, c codec.Codec[T]) ([]T, error) {
	return Values(d.ReadRecords(topic), c)
}
