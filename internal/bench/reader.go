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

// reader consumes a side's output topic with read_committed from the start,
// notes when each record arrives (the moment it is visible to a
// read_committed consumer), and checks that every input record has exactly
// one output record.
type reader struct {
	topic string
	topicReader

	mu       sync.Mutex
	phases   [numPhases]phaseState
	counted  bool
	ids      map[string]*idState
	records  int
	bad      int
	firstBad string
	lastRecv time.Time
	// arrived, if set, is called with the key of every record and the
	// moment it was read, under mu
	arrived func(key []byte, now time.Time)
}

// seqSet counts the sequence numbers 0..expect-1 of a phase's outputs:
// each distinct one, the repeats, and those outside the range.
type seqSet struct {
	expect     int
	seen       []uint64 // bit set
	distinct   int
	dups       int
	unexpected int
}

func (q *seqSet) init(n int) {
	q.expect = n
	q.seen = make([]uint64, (n+63)/64)
}

// add notes seq and reports whether it is in range and new.
func (q *seqSet) add(seq uint64) bool {
	switch {
	case seq >= uint64(q.expect):
		q.unexpected++
		return false
	case q.seen[seq/64]&(1<<(seq%64)) != 0:
		q.dups++
		return false
	}
	q.seen[seq/64] |= 1 << (seq % 64)
	q.distinct++
	return true
}

type phaseState struct {
	seqSet
	lat    []time.Duration
	done   chan struct{}
	doneAt time.Time
}

// idState is what the output says about the count of one id.
type idState struct {
	records int   // output records
	max     int64 // highest count
	sum     int64 // sum of the counts
}

func newReader(client sarama.Client, topic string, counted bool) (*reader, error) {
	r := &reader{topic: topic, counted: counted, ids: map[string]*idState{}}
	for i := range r.phases {
		r.phases[i].done = make(chan struct{})
	}
	if err := r.start(client, topic, r.handle); err != nil {
		return nil, err
	}
	return r, nil
}

// expect announces that n records of the phase are about to be written.
func (r *reader) expect(ph, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.phases[ph]
	s.init(n)
	if ph == phasePaced {
		s.lat = make([]time.Duration, 0, n)
	}
	if n == 0 {
		s.doneAt = time.Now()
		close(s.done)
	}
}

func (r *reader) handle(m *sarama.ConsumerMessage, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records++
	r.lastRecv = now
	if r.arrived != nil {
		r.arrived(m.Key, now)
	}
	v := m.Value
	if len(v) != outputLen || int(v[0]) >= numPhases {
		r.bad++
		if r.firstBad == "" {
			r.firstBad = fmt.Sprintf("%s/%d@%d: value %x", m.Topic, m.Partition, m.Offset, v)
		}
		return
	}
	seq := binary.BigEndian.Uint64(v[1:])
	sent := int64(binary.BigEndian.Uint64(v[9:]))
	count := int64(binary.BigEndian.Uint64(v[17:]))
	s := &r.phases[v[0]]
	if s.add(seq) {
		if s.lat != nil {
			s.lat = append(s.lat, now.Sub(time.Unix(0, sent)))
		}
		if s.distinct == s.expect {
			s.doneAt = now
			close(s.done)
		}
	}
	if r.counted {
		id := r.ids[string(m.Key)]
		if id == nil {
			id = &idState{}
			r.ids[string(m.Key)] = id
		}
		id.records++
		id.sum += count
		id.max = max(id.max, count)
	}
}

func (r *reader) phaseDone(ph int) (<-chan struct{}, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phases[ph].done, r.phases[ph].expect
}

func (r *reader) doneAt(ph int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phases[ph].doneAt
}

func (r *reader) count(ph int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phases[ph].distinct
}

func (r *reader) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.records
}

// quiet waits until no record arrived for d, at most limit.
func (r *reader) quiet(d, limit time.Duration) {
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

// latencies returns p50, p99 and the maximum of a phase's latencies.
func (r *reader) latencies(ph int) (p50, p99, maxLat time.Duration) {
	r.mu.Lock()
	lat := slices.Clone(r.phases[ph].lat)
	r.mu.Unlock()
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	return percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1]
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// verify checks that every input record of every phase has exactly one
// output record, and for a counting side that the counts of every id run
// from 1 to its number of records and add up to inputs. It returns the
// checks that passed as sentences.
func (r *reader) verify(side string, inputs int) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("bench: %s: "+format, append([]any{side}, a...)...))
	}
	for _, e := range r.readErrors() {
		add("reading %s: %v", r.topic, e)
	}
	if r.bad > 0 {
		add("%d output records of %s have a value that is not the bench's, first %s", r.bad, r.topic, r.firstBad)
	}
	for ph := range r.phases {
		s := &r.phases[ph]
		if s.distinct != s.expect {
			add("%s phase: %d of %d input records have an output record (%d missing)", phaseNames[ph], s.distinct, s.expect, s.expect-s.distinct)
		}
		if s.dups > 0 {
			add("%s phase: %d duplicate output records", phaseNames[ph], s.dups)
		}
		if s.unexpected > 0 {
			add("%s phase: %d output records for records that were never written", phaseNames[ph], s.unexpected)
		}
	}
	checks := []string{fmt.Sprintf("%s output records for %s input records, one for each", num(r.records), num(inputs))}
	if r.records != inputs {
		add("%d output records for %d input records", r.records, inputs)
	}
	if r.counted {
		var sum int64
		wrong := 0
		var firstWrong string
		for id, st := range r.ids {
			sum += st.max
			if int64(st.records) != st.max || st.sum != st.max*(st.max+1)/2 {
				wrong++
				if firstWrong == "" {
					firstWrong = fmt.Sprintf("%s: %d records, highest count %d, sum of counts %d", id, st.records, st.max, st.sum)
				}
			}
		}
		if wrong > 0 {
			add("%d ids have counts that are not 1, 2, ... n, first %s", wrong, firstWrong)
		}
		if sum != int64(inputs) {
			add("the final counts of the %d ids add up to %d, want %d", len(r.ids), sum, inputs)
		}
		checks = append(checks, fmt.Sprintf("final counts of %s ids add up to %s, each id counted 1, 2, ... n", num(len(r.ids)), num(int(sum))))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return checks, nil
}

// topicReader reads every partition of a topic from its start and hands
// each record, with the moment it arrived, to a handler; errors are kept.
type topicReader struct {
	consumer sarama.Consumer
	pcs      []sarama.PartitionConsumer
	wg       sync.WaitGroup

	errMu sync.Mutex
	errs  []error
}

// start begins reading; handle is called from one goroutine per partition.
func (t *topicReader) start(client sarama.Client, topic string, handle func(*sarama.ConsumerMessage, time.Time)) error {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("bench: reader: %w", err)
	}
	t.consumer = consumer
	parts, err := client.Partitions(topic)
	if err != nil {
		t.close()
		return fmt.Errorf("bench: reader: partitions of %s: %w", topic, err)
	}
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.close()
			return fmt.Errorf("bench: reader: consume %s/%d: %w", topic, p, err)
		}
		t.pcs = append(t.pcs, pc)
		t.wg.Add(2)
		go func() {
			defer t.wg.Done()
			for m := range pc.Messages() {
				handle(m, time.Now())
			}
		}()
		go func() {
			defer t.wg.Done()
			for e := range pc.Errors() {
				t.errMu.Lock()
				t.errs = append(t.errs, e)
				t.errMu.Unlock()
			}
		}()
	}
	return nil
}

// close stops reading and waits for the handlers.
func (t *topicReader) close() {
	for _, pc := range t.pcs {
		pc.AsyncClose()
	}
	t.wg.Wait()
	if t.consumer != nil {
		t.consumer.Close()
	}
}

// readErrors returns the errors seen so far.
func (t *topicReader) readErrors() []error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return slices.Clone(t.errs)
}
