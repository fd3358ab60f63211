package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// The phases of the delayed-messages bench, written in the first byte of
// every request and message.
const (
	tphWarmup = iota // a few delayed and plain messages, waited for
	tphStored        // timers due in an hour or more: they stay in the store
	tphBurst         // timers all due at one moment, held in memory until then
	tphPlain         // plain messages, ingress straight to the sink
	tphSend          // plain messages, ingress to the scheduler, ctx.Send to the sink
	tphPaced         // a paced load of delayed messages with random delays
	numTimerPhases
)

var timerPhaseNames = [numTimerPhases]string{"warm-up", "stored timers", "burst", "plain (ingress)", "plain (ctx.Send)", "paced"}

// timerReader consumes the sink's egress topic with read_committed, notes
// when each record arrives, and checks that every message of every phase
// arrives exactly once and none before its due time.
type timerReader struct {
	topic string
	// longDelay splits the lateness figures: messages sent with at least
	// this delay are also counted apart
	longDelay time.Duration

	topicReader

	mu       sync.Mutex
	phases   [numTimerPhases]timerPhaseState
	records  int
	bad      int
	firstBad string
	lastRecv time.Time
}

type timerPhaseState struct {
	seqSet
	delayed int // distinct messages with a due time
	// early counts messages that reached the sink, or the reader, before
	// their due time
	early      int
	firstEarly string
	// late holds, per message, arrival at the reader minus due time, and
	// invoked the sink's invocation minus due time; lateLong and
	// invokedLong the same for the messages sent with a delay of at least
	// longDelay. Kept only for phases with keepLate.
	keepLate              bool
	late, invoked         []time.Duration
	lateLong, invokedLong []time.Duration
	first, last           time.Time // first and last arrival
	done                  chan struct{}
}

// newTimerReader starts reading topic from its start.
func newTimerReader(client sarama.Client, topic string, longDelay time.Duration) (*timerReader, error) {
	r := newTimerReaderState(topic, longDelay)
	if err := r.start(client, topic, r.handle); err != nil {
		return nil, err
	}
	return r, nil
}

func newTimerReaderState(topic string, longDelay time.Duration) *timerReader {
	r := &timerReader{topic: topic, longDelay: longDelay}
	for i := range r.phases {
		r.phases[i].done = make(chan struct{})
	}
	return r
}

// expect announces that n messages of the phase will be sent; keepLate
// keeps each message's lateness for percentiles.
func (r *timerReader) expect(ph, n int, keepLate bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.phases[ph]
	s.init(n)
	s.keepLate = keepLate
	if keepLate {
		s.late = make([]time.Duration, 0, n)
		s.invoked = make([]time.Duration, 0, n)
	}
	if n == 0 {
		close(s.done)
	}
}

func (r *timerReader) handle(m *sarama.ConsumerMessage, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records++
	r.lastRecv = now
	v := m.Value
	if len(v) != timerOutLen || int(v[0]) >= numTimerPhases {
		r.bad++
		if r.firstBad == "" {
			r.firstBad = fmt.Sprintf("%s/%d@%d: value %x", m.Topic, m.Partition, m.Offset, v)
		}
		return
	}
	seq := binary.BigEndian.Uint64(v[1:])
	due := int64(binary.BigEndian.Uint64(v[9:]))
	sent := int64(binary.BigEndian.Uint64(v[17:]))
	invoked := int64(binary.BigEndian.Uint64(v[25:]))
	s := &r.phases[v[0]]
	if !s.add(seq) {
		return
	}
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	if due != 0 {
		s.delayed++
		late, inv := now.Sub(time.Unix(0, due)), time.Duration(invoked-due)
		if (inv < 0 || late < 0) && s.early == 0 {
			s.firstEarly = fmt.Sprintf("%s/%d@%d: message %d due %s, delivered %v and read %v after it",
				m.Topic, m.Partition, m.Offset, seq, time.Unix(0, due).Format(time.RFC3339Nano), inv, late)
		}
		if inv < 0 || late < 0 {
			s.early++
		}
		if s.keepLate {
			s.late = append(s.late, late)
			s.invoked = append(s.invoked, inv)
			if time.Duration(due-sent) >= r.longDelay {
				s.lateLong = append(s.lateLong, late)
				s.invokedLong = append(s.invokedLong, inv)
			}
		}
	}
	if s.distinct == s.expect {
		close(s.done)
	}
}

func (r *timerReader) phaseDone(ph int) (<-chan struct{}, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phases[ph].done, r.phases[ph].expect
}

func (r *timerReader) count(ph int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phases[ph].distinct
}

// arrivals returns the first and last arrival of a phase's messages.
func (r *timerReader) arrivals(ph int) (first, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phases[ph].first, r.phases[ph].last
}

// Lateness is how late the messages of a phase arrived.
type Lateness struct {
	// Egress is arrival of the egress record at the reader (read_committed)
	// minus the due time; Delivery the sink's invocation minus the due
	// time.
	Egress, Delivery Percentiles
	// LongEgress and LongDelivery are the same for the messages sent with
	// a delay of at least LongDelay (whose timer was surely in memory
	// before it was due), of which there are Long.
	LongEgress, LongDelivery Percentiles
	LongDelay                time.Duration
	Long                     int
}

// lateness returns the lateness of a phase's messages.
func (r *timerReader) lateness(ph int) Lateness {
	r.mu.Lock()
	s := &r.phases[ph]
	late, inv := slices.Clone(s.late), slices.Clone(s.invoked)
	lateLong, invLong := slices.Clone(s.lateLong), slices.Clone(s.invokedLong)
	r.mu.Unlock()
	return Lateness{
		Egress: percentiles(late), Delivery: percentiles(inv),
		LongEgress: percentiles(lateLong), LongDelivery: percentiles(invLong),
		LongDelay: r.longDelay, Long: len(lateLong),
	}
}

// Percentiles of a set of durations (nearest rank).
type Percentiles struct {
	N             int
	P50, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	return Percentiles{N: len(d), P50: percentile(d, 50), P99: percentile(d, 99), Max: d[len(d)-1]}
}

// quiet waits until no record arrived for d, at most limit.
func (r *timerReader) quiet(d, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		last := r.lastRecv
		r.mu.Unlock()
		if time.Since(last) >= d {
			return
		}
		time.Sleep(d / 5)
	}
}

// verify checks that every message of every phase arrived exactly once and
// none before its due time, and that nothing else arrived. It returns the
// checks that passed as sentences.
func (r *timerReader) verify() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("bench: timers: "+format, a...))
	}
	for _, e := range r.readErrors() {
		add("reading %s: %v", r.topic, e)
	}
	if r.bad > 0 {
		add("%d output records of %s have a value that is not the bench's, first %s", r.bad, r.topic, r.firstBad)
	}
	total, delayed := 0, 0
	for ph := range r.phases {
		s := &r.phases[ph]
		total += s.expect
		switch {
		case ph == tphStored && s.unexpected > 0:
			add("%s phase: %d messages due in an hour or more arrived during the bench", timerPhaseNames[ph], s.unexpected)
		case s.unexpected > 0:
			add("%s phase: %d output records for messages that were never sent", timerPhaseNames[ph], s.unexpected)
		}
		if s.distinct != s.expect {
			add("%s phase: %d of %d messages arrived (%d missing)", timerPhaseNames[ph], s.distinct, s.expect, s.expect-s.distinct)
		}
		if s.dups > 0 {
			add("%s phase: %d messages arrived twice or more", timerPhaseNames[ph], s.dups)
		}
		if s.early > 0 {
			add("%s phase: %d messages arrived before their due time, first %s", timerPhaseNames[ph], s.early, s.firstEarly)
		}
		delayed += s.delayed
	}
	if r.records != total {
		add("%d output records for %d messages", r.records, total)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return []string{
		fmt.Sprintf("%s output records for %s messages sent, one for each", num(r.records), num(total)),
		fmt.Sprintf("%s delayed messages delivered, none before its due time (checked at the sink's invocation and at the reader)", num(delayed)),
	}, nil
}
