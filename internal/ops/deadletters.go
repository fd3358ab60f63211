package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// DeadLetter is a record of the dead-letter topic, with what its headers
// say and, for a message from the loop topic, the message.
type DeadLetter struct {
	Partition int32
	Offset    int64
	Time      time.Time
	Key       []byte // nil: none
	Value     []byte // nil: none (ValueDropped, or a tombstone)
	Headers   map[string]string
	// Reason is why the record could not be processed (stateloop.error).
	Reason string
	// Address is the address the record was for, if it reached one.
	Address *functions.Address
	// Source is the record that failed: a loop record (Offset -1 for a
	// message delivered in its sender's transaction), an ingress record, a
	// table record recovery left out. Nil if the headers do not say.
	Source *Source
	// Message is the message a loop record carried, if its value decodes.
	Message *wire.Envelope
	// ValueDropped: the value could not be written with the dead letter.
	ValueDropped bool
	// Replayed is when the runtime delivered a replay of the dead letter
	// (the time of its replay marker); nil if it was not replayed.
	Replayed *time.Time
}

// Source is a consumed record.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Ref names the dead letter as "<partition>/<offset>".
func (d *DeadLetter) Ref() string { return wire.FormatDeadLetterRef(d.Partition, d.Offset) }

// parseDeadLetter reads a record of the dead-letter topic; it returns the
// dead letter a replay marker names, and ok false, for a marker.
func parseDeadLetter(topo topology.Topology, partition int32, r kafkaread.Record) (dl DeadLetter, marks string, ok bool) {
	dl = DeadLetter{Partition: partition, Offset: r.Offset, Time: r.Time.UTC(), Key: r.Key, Value: r.Value, Headers: map[string]string{}}
	src := Source{Partition: -1, Offset: -1}
	var fnType, fnID string
	for _, h := range r.Headers {
		k, v := string(h.Key), strings.ToValidUTF8(string(h.Value), "\uFFFD")
		dl.Headers[k] = v
		switch k {
		case wire.HeaderReplayOf:
			marks = v
		case wire.HeaderError:
			dl.Reason = v
		case wire.HeaderFunctionType:
			fnType = v
		case wire.HeaderFunctionID:
			fnID = v
		case wire.HeaderSourceTopic:
			src.Topic = v
		case wire.HeaderSourcePartition:
			if p, err := strconv.ParseInt(v, 10, 32); err == nil {
				src.Partition = int32(p)
			}
		case wire.HeaderSourceOffset:
			if o, err := strconv.ParseInt(v, 10, 64); err == nil {
				src.Offset = o
			}
		case wire.HeaderValueDropped:
			dl.ValueDropped = true
		}
	}
	if marks != "" {
		return dl, marks, false
	}
	if src.Topic != "" {
		dl.Source = &src
	}
	if fnType != "" {
		a := functions.Address{Type: functions.TypeName(fnType), ID: fnID}
		if a.Validate() == nil {
			dl.Address = &a
		}
	}
	if dl.Source != nil && dl.Source.Topic == string(topo.LoopTopic()) && !dl.ValueDropped && r.Value != nil {
		if env, err := wire.DecodeEnvelope(r.Value); err == nil {
			dl.Message = &env
			if dl.Address == nil {
				dl.Address = &env.Target
			}
		}
	}
	return dl, "", true
}

// Replay returns the control record that replays the dead letter, or why
// it cannot be replayed: a record that never reached an address (an
// ingress record without a key, one its router failed on, a loop record
// that does not decode), a table record that recovery left out (it is
// state: edit the address's state instead), a control record (run the
// command again), or a dead letter whose value was dropped.
func (d *DeadLetter) Replay(topo topology.Topology) (Op, error) {
	var why string
	src := d.Source
	switch {
	case d.ValueDropped:
		why = "its value could not be written to the dead-letter topic"
	case src == nil:
		why = "it does not say where it came from (no " + wire.HeaderSourceTopic + " header)"
	case d.Address == nil:
		why = "it never reached a function (" + d.Reason + "); once the cause is fixed, write the record to its topic again"
	case src.Topic == string(topo.LoopTopic()) && d.Message == nil:
		why = "its message does not decode"
	case src.Topic == string(topo.LoopTopic()) && d.Message.Control != nil:
		why = "it is an operator's " + d.Message.Control.Kind() + ", not a message; run the command again"
	case src.Topic == string(topo.LoopTopic()):
		r := &wire.Replay{DeadLetterPartition: d.Partition, DeadLetterOffset: d.Offset, Message: d.Message}
		return Op{To: *d.Address, Control: &wire.Control{Replay: r}, Key: wire.ReplayKey(d.Partition, d.Offset)}, nil
	default:
		if _, ok := topo.TableFunction(src.Topic); ok {
			why = "it is a table record recovery left out (state, not a message); set the address's state instead"
			break
		}
		rec := &wire.IngressRecord{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset, Key: d.Key, Value: d.Value}
		if rec.Value == nil {
			rec.Value = []byte{}
		}
		r := &wire.Replay{DeadLetterPartition: d.Partition, DeadLetterOffset: d.Offset, Record: rec}
		return Op{To: *d.Address, Control: &wire.Control{Replay: r}, Key: wire.ReplayKey(d.Partition, d.Offset)}, nil
	}
	return Op{}, fmt.Errorf("dead letter %s cannot be replayed: %s", d.Ref(), why)
}

// Filter chooses dead letters. The zero Filter chooses every one.
type Filter struct {
	// Type and ID: the address's function type and id ("" for any).
	Type functions.TypeName
	ID   string
	// Reason: the reason contains it ("" for any), in any case.
	Reason string
	// Partition of the dead-letter topic, -1 for any; with it, the
	// offsets from From to To, both included (To -1: no end).
	Partition int32
	From, To  int64
	// Replayed: "" any, "yes" replayed ones, "no" the others.
	Replayed string
}

// AnyPartition is a Filter's Partition that matches every partition.
const AnyPartition = -1

// Match reports whether the filter chooses d.
func (f Filter) Match(d *DeadLetter) bool {
	switch {
	case f.Type != "" && (d.Address == nil || d.Address.Type != f.Type):
	case f.ID != "" && (d.Address == nil || d.Address.ID != f.ID):
	case f.Reason != "" && !strings.Contains(strings.ToLower(d.Reason), strings.ToLower(f.Reason)):
	case f.Partition != AnyPartition && (d.Partition != f.Partition || d.Offset < f.From || (f.To >= 0 && d.Offset > f.To)):
	case f.Replayed == "yes" && d.Replayed == nil, f.Replayed == "no" && d.Replayed != nil:
	default:
		return true
	}
	return false
}

// IsZero reports whether the filter chooses every dead letter.
func (f Filter) IsZero() bool {
	return f.Type == "" && f.ID == "" && f.Reason == "" && f.Partition == AnyPartition && f.Replayed == ""
}

// DeadLetters reads the dead-letter topic read_committed and returns the
// dead letters the filter chooses, oldest first (by partition, then
// offset), with their replay status. last > 0 reads only the last records
// of each partition, enough for the last dead letters of the topic, and
// returns the newest last ones (newest first); 0 reads them all. A topic
// that does not exist yet has none. Partitions that cannot be read are
// reported in errs and the others returned.
func (c *Client) DeadLetters(ctx context.Context, f Filter, last int) (dls []DeadLetter, errs []error) {
	topic := string(c.topo.DLQTopic())
	counts, err := kafkaread.PartitionCounts(c.reader, []string{topic})
	if err != nil {
		return nil, []error{fmt.Errorf("ops: %w", err)}
	}
	n, ok := counts[topic]
	if !ok {
		return nil, nil
	}
	var parts []int32
	for p := range n {
		if f.Partition == AnyPartition || f.Partition == p {
			parts = append(parts, p)
		}
	}
	errs = c.eachPartition(topic, parts, func(p int32, e kafkaread.PartitionEnds) error {
		got, err := c.readDeadLetters(ctx, p, e, f, last)
		dls = append(dls, got...)
		return err
	})
	if last > 0 {
		slices.SortFunc(dls, func(a, b DeadLetter) int {
			return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Partition, b.Partition), cmp.Compare(b.Offset, a.Offset))
		})
		dls = dls[:min(len(dls), last)]
	}
	return dls, errs
}

// eachPartition calls read for each of the partitions of topic with its
// ends, and returns the errors of those whose ends are not known and of
// read.
func (c *Client) eachPartition(topic string, parts []int32, read func(int32, kafkaread.PartitionEnds) error) []error {
	tps := make([]kafkaread.TopicPartition, len(parts))
	for i, p := range parts {
		tps[i] = kafkaread.TopicPartition{Topic: topic, Partition: p}
	}
	ends := kafkaread.ListEnds(c.reader, tps)
	var errs []error
	for _, tp := range tps {
		e := ends[tp]
		if e.Err == nil {
			e.Err = read(tp.Partition, e)
		}
		if e.Err != nil {
			errs = append(errs, e.Err)
		}
	}
	return errs
}

// readDeadLetters reads a partition of the dead-letter topic: all of it,
// or with last > 0 back from its end in growing windows until it has last
// chosen dead letters (a replay marker is always after its dead letter,
// in its partition, so a window holds the markers of its dead letters).
func (c *Client) readDeadLetters(ctx context.Context, partition int32, e kafkaread.PartitionEnds, f Filter, last int) ([]DeadLetter, error) {
	from := e.Start
	if f.Partition != AnyPartition {
		from = max(from, f.From)
	}
	end := e.LSO
	window := int64(2 * last)
	var out []DeadLetter
	replayed := make(map[int64]time.Time)
	for end > from {
		start := from
		if last > 0 {
			start = max(from, end-window)
		}
		var got []DeadLetter
		_, err := kafkaread.ReadCommitted(ctx, c.reader, string(c.topo.DLQTopic()), partition, start, end, func(r kafkaread.Record) error {
			dl, marks, ok := parseDeadLetter(c.topo, partition, r)
			if !ok {
				if p, off, err := wire.ParseDeadLetterRef(marks); err == nil && p == partition {
					if _, seen := replayed[off]; !seen {
						replayed[off] = dl.Time
					}
				}
				return nil
			}
			got = append(got, dl)
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("ops: read %s/%d: %w", c.topo.DLQTopic(), partition, err)
		}
		for i := range got {
			if at, ok := replayed[got[i].Offset]; ok {
				got[i].Replayed = &at
			}
		}
		got = slices.DeleteFunc(got, func(d DeadLetter) bool { return !f.Match(&d) })
		out = append(got, out...)
		if last == 0 || len(out) >= last {
			break
		}
		end, window = start, window*4
	}
	return out, nil
}

// DeadLetter reads the dead letter at partition/offset, with its replay
// status.
func (c *Client) DeadLetter(ctx context.Context, partition int32, offset int64) (DeadLetter, error) {
	dls, errs := c.DeadLetters(ctx, Filter{Partition: partition, From: offset, To: offset}, 0)
	if err := errors.Join(errs...); err != nil {
		return DeadLetter{}, err
	}
	if len(dls) == 0 {
		return DeadLetter{}, fmt.Errorf("ops: no dead letter %s in %s: list them with stateloop dlq list", wire.FormatDeadLetterRef(partition, offset), c.topo.DLQTopic())
	}
	return dls[0], nil
}

// ReplayOutcome is what became of the replay of a dead letter.
type ReplayOutcome struct {
	DeadLetter DeadLetter
	// Status: "replayed" (delivered to its address now), "duplicate" (a
	// replay of it was delivered before: not again), "skipped" (replayed
	// before, says its marker: not sent), "refused" (it cannot be
	// replayed, or the runtime refused it: Err says why), "unanswered"
	// (sent, and not answered in time: Err), "dry-run" (would be sent).
	Status string
	Err    error
}

// replayChunk is how many replays Replay writes before it waits for
// their answers.
const replayChunk = 500

// Replay replays the dead letters once each: those already replayed
// (their marker says so) are skipped, the others sent to their addresses
// through the runtime with an idempotency key made from their partition
// and offset, so that a dead letter reaches its address once however
// often Replay runs, also when it or the runtime is killed half-way. With
// dryRun it sends nothing and says what it would do. It writes the
// replays 500 at a time and waits up to wait for the runtime's answers to
// each 500 before it writes more (so a replay of many dead letters that
// the runtime does not answer stops early: the rest are unanswered); it
// calls report, if not nil, with each outcome as it is known, in order,
// and returns them all.
func (c *Client) Replay(ctx context.Context, dls []DeadLetter, dryRun bool, wait time.Duration, report func(ReplayOutcome)) []ReplayOutcome {
	out := make([]ReplayOutcome, len(dls))
	var ops []Op
	var idx []int
	reported := 0
	flush := func() {
		for ; reported < len(out) && out[reported].Status != ""; reported++ {
			if report != nil {
				report(out[reported])
			}
		}
	}
	send := func() {
		outcomes := c.Do(ctx, ops, wait)
		for j, o := range outcomes {
			r := &out[idx[j]]
			switch {
			case errors.Is(o.Err, ErrNoAnswer):
				r.Status, r.Err = "unanswered", o.Err
			case o.Err != nil:
				r.Status, r.Err = "refused", o.Err
			case o.Result.Error != "":
				r.Status, r.Err = "refused", errors.New(o.Result.Error)
			case o.Result.Duplicate:
				r.Status = "duplicate"
			default:
				r.Status = "replayed"
			}
		}
		ops, idx = ops[:0], idx[:0]
		flush()
	}
	stalled := false
	for i := range dls {
		d := &dls[i]
		r := &out[i]
		r.DeadLetter = *d
		op, err := d.Replay(c.topo)
		switch {
		case d.Replayed != nil:
			r.Status = "skipped"
		case err != nil:
			r.Status, r.Err = "refused", err
		case dryRun:
			r.Status = "dry-run"
		case stalled:
			r.Status, r.Err = "unanswered", fmt.Errorf("ops: %w: not sent, since the replays before it were not answered within %v", ErrNoAnswer, wait)
		default:
			ops = append(ops, op)
			idx = append(idx, i)
			if len(ops) == replayChunk {
				first := idx[0]
				send()
				stalled = out[first].Status == "unanswered"
			}
		}
		flush()
	}
	if len(ops) > 0 {
		send()
	}
	return out
}
