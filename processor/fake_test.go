package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
)

// fakeKafka is an in-memory cluster and transactional producer for unit
// tests of the transaction cycle: records become visible (and offsets are
// assigned) only when their transaction commits, as read_committed
// readers see them.
type fakeKafka struct {
	mu      sync.Mutex
	logs    map[topicPart][]fakeRecord
	info    map[string]topicInfo
	offsets map[topicPart]int64 // the group's committed offsets

	// the open transaction
	open    bool
	pending []*output
	// faults
	commitErr func() error          // the next commits fail while it returns an error
	sendErr   func(o *output) error // a refused output
	failedOut []failedOutput
	commits   int
}

type fakeRecord struct {
	key, value []byte
	headers    []header
}

func newFakeKafka() *fakeKafka {
	return &fakeKafka{logs: map[topicPart][]fakeRecord{}, info: map[string]topicInfo{}, offsets: map[topicPart]int64{}}
}

// records returns the committed records of a partition.
func (f *fakeKafka) records(topic string, part int32) []fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRecord(nil), f.logs[topicPart{topic, part}]...)
}

// all returns the committed records of every partition of a topic.
func (f *fakeKafka) all(topic string) []fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRecord
	for p := int32(0); p < f.info[topic].Partitions; p++ {
		out = append(out, f.logs[topicPart{topic, p}]...)
	}
	return out
}

// append writes committed records, as another producer would.
func (f *fakeKafka) append(topic string, part int32, recs ...fakeRecord) (first int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tp := topicPart{topic, part}
	first = int64(len(f.logs[tp]))
	f.logs[tp] = append(f.logs[tp], recs...)
	return first
}

// producer

func (f *fakeKafka) begin() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open {
		return errors.New("fake: a transaction is open already")
	}
	f.open, f.pending, f.failedOut = true, nil, nil
	return nil
}

func (f *fakeKafka) send(o *output) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		if err := f.sendErr(o); err != nil {
			f.failedOut = append(f.failedOut, failedOutput{out: o, err: err})
			return
		}
	}
	f.pending = append(f.pending, o)
}

func (f *fakeKafka) commit(offsets map[string]map[int32]int64, _ groupMeta) ([]acked, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return nil, errors.New("fake: no transaction is open")
	}
	if len(f.failedOut) > 0 {
		return nil, fmt.Errorf("a record failed: %w", f.failedOut[0].err)
	}
	if f.commitErr != nil {
		if err := f.commitErr(); err != nil {
			return nil, err
		}
	}
	var acks []acked
	for _, o := range f.pending {
		tp := topicPart{o.Topic, o.Partition}
		if _, ok := f.info[o.Topic]; !ok || o.Partition >= f.info[o.Topic].Partitions {
			return nil, fmt.Errorf("fake: no partition %s/%d", o.Topic, o.Partition)
		}
		acks = append(acks, acked{out: o, offset: int64(len(f.logs[tp]))})
		f.logs[tp] = append(f.logs[tp], fakeRecord{key: o.Key, value: o.Value, headers: o.Headers})
	}
	for topic, parts := range offsets {
		for part, off := range parts {
			f.offsets[topicPart{topic, part}] = off
		}
	}
	f.open, f.pending = false, nil
	f.commits++
	return acks, nil
}

func (f *fakeKafka) abort() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open, f.pending = false, nil
	return nil
}

func (f *fakeKafka) failed() []failedOutput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]failedOutput(nil), f.failedOut...)
}

func (f *fakeKafka) fatal() bool  { return false }
func (f *fakeKafka) close() error { return nil }

// cluster

func (f *fakeKafka) ends(topic string, part int32) (int64, int64, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := int64(len(f.logs[topicPart{topic, part}]))
	return 0, n, n, nil
}

func (f *fakeKafka) readCommitted(_ context.Context, topic string, part int32, from, to int64, fn func(kafkaread.Record) error) (int64, error) {
	recs := f.records(topic, part)
	for off := from; off < to && off < int64(len(recs)); off++ {
		r := recs[off]
		kr := kafkaread.Record{Offset: off, Key: r.key, Value: r.value}
		for _, h := range r.headers {
			kr.Headers = append(kr.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
		if err := fn(kr); err != nil {
			return off, err
		}
	}
	return max(from, min(to, int64(len(recs)))), nil
}

func (f *fakeKafka) lastCommittedOffset(_ context.Context, topic string, part int32, from int64) (int64, error) {
	n := int64(len(f.records(topic, part)))
	if n <= from || n == 0 {
		return -1, nil
	}
	return n - 1, nil
}

func (f *fakeKafka) topicID(string) (string, error) { return "", nil }

func (f *fakeKafka) partitions(topic string) (int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ti, ok := f.info[topic]
	if !ok {
		return 0, fmt.Errorf("fake: no topic %s", topic)
	}
	return ti.Partitions, nil
}

func (f *fakeKafka) topics() (map[string]topicInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]topicInfo, len(f.info))
	for k, v := range f.info {
		out[k] = v
	}
	return out, nil
}

func (f *fakeKafka) createTopic(name string, partitions int32, _ int16, configs map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.info[name]; ok {
		return errTopicExists
	}
	f.info[name] = topicInfo{Partitions: partitions, Configs: configs}
	return nil
}

func (f *fakeKafka) waitReady(context.Context, ...string) error { return nil }

func (f *fakeKafka) groupOffsets(_ string, parts map[string][]int32) (map[topicPart]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[topicPart]int64{}
	for topic, ps := range parts {
		for _, p := range ps {
			off, ok := f.offsets[topicPart{topic, p}]
			if !ok {
				off = -1
			}
			out[topicPart{topic, p}] = off
		}
	}
	return out, nil
}
