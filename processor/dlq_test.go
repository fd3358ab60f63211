package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// Bad input of every kind goes to the dead-letter topic, exactly once, and
// never stops the partition it came on.

type dlqCmd struct {
	Op  string `json:"op"`
	Tag string `json:"tag"`
}

var (
	dlqFn      = functions.TypeName("test/dlq-fn")
	dlqCmdType = functions.NewType("test/cmd", codec.JSON[dlqCmd]())
	dlqCount   = functions.NewState("count", functions.LongType)
	dlqOut     = functions.TypeName("test/dlq-out")
)

// dlqApp runs one function type that counts its messages and then does
// what the message's op says: "ok" writes "<id>=<count>" to the egress, the
// others fail in one way or another (and their count must not stick).
func dlqApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: dlqFn,
		Function: functions.Router(functions.Handle(dlqCmdType, func(ctx functions.Context, c dlqCmd) error {
			n, _ := dlqCount.Get(ctx)
			n++
			dlqCount.Set(ctx, n)
			id := ctx.Self().ID
			switch c.Op {
			case "ok":
				ctx.SendEgress(dlqOut, functions.KafkaMessage("", id, []byte(id+"="+strconv.FormatInt(n, 10))))
			case "fail":
				ctx.SendEgress(dlqOut, functions.KafkaMessage("", id, []byte("leak "+c.Tag)))
				return errors.New("boom " + c.Tag)
			case "panic":
				ctx.SendEgress(dlqOut, functions.KafkaMessage("", id, []byte("leak "+c.Tag)))
				panic("kaboom " + c.Tag)
			case "perm":
				return functions.Permanent(errors.New("nope " + c.Tag))
			case "bad-egress":
				ctx.SendEgress(dlqOut, functions.KafkaMessage("", id, []byte("leak "+c.Tag)))
				ctx.Send(functions.Address{Type: dlqFn, ID: id + "-leak"}, dlqCmdType.Of(dlqCmd{Op: "ok"}))
				ctx.SendEgress("test/nowhere", functions.KafkaMessage("", id, []byte("x")))
			case "huge":
				// larger than the producer's and the broker's max message size
				ctx.SendEgress(dlqOut, functions.KafkaMessage("", id, bytes.Repeat([]byte("x"), 2<<20)))
			case "bad-topic":
				ctx.SendEgress(dlqOut, functions.KafkaMessage("", id, []byte("leak "+c.Tag)))
				ctx.SendEgress(dlqOut, functions.KafkaMessage(app+"-undeclared", id, []byte("x")))
			}
			return nil
		})),
		State: []functions.StateSpec{dlqCount},
		// not "test/nowhere": sending to it fails the invocation
		Egresses: []functions.TypeName{dlqOut},
	})
	topo := topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  []functions.TypeName{dlqFn},
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: dlqCmdType.Name(), Targets: []functions.TypeName{dlqFn}}},
		Egresses:   []topology.Egress{{ID: dlqOut, Topics: []topology.Topic{topology.Topic(app + "-out")}}},
	}
	return topo, reg
}

// dlqProducer writes records to explicit partitions and returns their
// offsets.
type dlqProducer struct {
	t  testing.TB
	sp sarama.SyncProducer
}

func newDLQProducer(t testing.TB, brokers []string) *dlqProducer {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sp, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return &dlqProducer{t: t, sp: sp}
}

func (p *dlqProducer) send(topic string, part int32, key, value []byte) int64 {
	p.t.Helper()
	m := &sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.ByteEncoder(value)}
	if key != nil {
		m.Key = sarama.ByteEncoder(key)
	}
	_, off, err := p.sp.SendMessage(m)
	if err != nil {
		p.t.Fatalf("send to %s/%d: %v", topic, part, err)
	}
	return off
}

func dlqJSON(op, tag string) []byte {
	b, _ := json.Marshal(dlqCmd{Op: op, Tag: tag})
	return b
}

// dlqCase is one bad record and what its dead letter must say.
type dlqCase struct {
	name     string
	tag      string                       // unique bytes inside the bad record
	write    func(tag string) []dlqSource // writes the record; the dead letter's possible sources
	reason   string                       // substring of stateloop.error
	fnType   string                       // stateloop.function.type, "" if none
	failures int64                        // failed invocation attempts it costs
}

// dlqSource is where a dead letter may come from; offset -1: not known.
type dlqSource struct {
	topic     string
	partition int32
	offset    int64
}

func dlqCases(app string, prod *dlqProducer, retries int) []dlqCase {
	in, loop := app+"-in", app+"-loop"
	pa := partitionFor("a", 4)
	// a record from the ingress fails either on the ingress record itself
	// (delivered directly) or on the loop record it was routed to (at an
	// offset the test does not know)
	viaIngress := func(value []byte) []dlqSource {
		off := prod.send(in, pa, []byte("a"), value)
		return []dlqSource{{in, pa, off}, {loop, pa, -1}}
	}
	ingress := func(op string) func(string) []dlqSource {
		return func(tag string) []dlqSource { return viaIngress(dlqJSON(op, tag)) }
	}
	return []dlqCase{
		{name: "ingress record without key", reason: "ingress record has no key",
			write: func(tag string) []dlqSource {
				return []dlqSource{{in, pa, prod.send(in, pa, nil, dlqJSON("ok", tag))}}
			}},
		{name: "payload that does not decode", reason: "decode message", fnType: string(dlqFn), failures: 1,
			write: func(tag string) []dlqSource { return viaIngress([]byte("not json " + tag)) }},
		{name: "message to an unknown function type", reason: "unknown function type test/unknown", fnType: "test/unknown",
			write: func(tag string) []dlqSource {
				env := wire.Envelope{Target: functions.Address{Type: "test/unknown", ID: "a"}, Argument: dlqCmdType.Of(dlqCmd{Op: "ok", Tag: tag})}
				return []dlqSource{{loop, pa, prod.send(loop, pa, []byte("a"), wire.AppendEnvelope(nil, env))}}
			}},
		{name: "garbage on the loop topic", reason: "undecodable message envelope",
			write: func(tag string) []dlqSource {
				// field 1 claims 64 bytes, fewer follow
				return []dlqSource{{loop, pa, prod.send(loop, pa, []byte("a"), append([]byte{0x0a, 0x40}, tag...))}}
			}},
		{name: "function error", reason: "boom", fnType: string(dlqFn), failures: int64(retries + 1), write: ingress("fail")},
		{name: "function panic", reason: "panic: kaboom", fnType: string(dlqFn), failures: int64(retries + 1), write: ingress("panic")},
		{name: "permanent function error", reason: "nope", fnType: string(dlqFn), failures: 1, write: ingress("perm")},
		{name: "undeclared egress", reason: "undeclared egress test/nowhere", fnType: string(dlqFn), failures: 1, write: ingress("bad-egress")},
		{name: "egress to an undeclared topic", reason: `does not write to topic "` + app + `-undeclared"`, fnType: string(dlqFn), write: ingress("bad-topic")},
	}
}

// dlqRecords returns the dead letters (read_committed) holding tag.
func dlqRecords(t testing.TB, client sarama.Client, app, tag string) []topicRecord {
	var out []topicRecord
	for _, r := range readTopic(t, client, app+"-dlq") {
		if bytes.Contains(r.Value, []byte(tag)) {
			out = append(out, r)
		}
	}
	return out
}

// dlqCheckExactlyOnce checks that the dead-letter topic holds exactly one
// record per case, each a copy of the record its source headers name, and
// that no effect of a failed invocation leaked to the egress.
func dlqCheckExactlyOnce(t testing.TB, client sarama.Client, app string, cases []dlqCase) {
	t.Helper()
	dlq := readTopic(t, client, app+"-dlq")
	sources := map[string]map[[2]int64][]byte{}
	source := func(topic string, part int32, off int64) ([]byte, bool) {
		if sources[topic] == nil {
			sources[topic] = map[[2]int64][]byte{}
			for _, r := range readTopic(t, client, topic) {
				sources[topic][[2]int64{int64(r.Partition), r.Offset}] = r.Value
			}
		}
		v, ok := sources[topic][[2]int64{int64(part), off}]
		return v, ok
	}
	for _, c := range cases {
		n := 0
		for _, r := range dlq {
			if bytes.Contains(r.Value, []byte(c.tag)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d dead letters, want exactly 1", c.name, n)
		}
	}
	if len(dlq) != len(cases) {
		t.Errorf("dead-letter topic holds %d records, want %d", len(dlq), len(cases))
	}
	for _, r := range dlq {
		part, err1 := strconv.ParseInt(r.Headers["stateloop.source.partition"], 10, 32)
		off, err2 := strconv.ParseInt(r.Headers["stateloop.source.offset"], 10, 64)
		if err1 != nil || err2 != nil {
			t.Errorf("dead letter %q: bad source headers %v", r.Value, r.Headers)
			continue
		}
		v, ok := source(r.Headers["stateloop.source.topic"], int32(part), off)
		if !ok || !bytes.Equal(v, r.Value) {
			t.Errorf("dead letter %q: its source %s/%d/%d holds %q (found %v)", r.Value, r.Headers["stateloop.source.topic"], part, off, v, ok)
		}
	}
	for _, r := range readTopic(t, client, app+"-out") {
		if bytes.Contains(r.Value, []byte("leak")) {
			t.Errorf("egress record %q of a failed invocation was written", r.Value)
		}
	}
	for _, r := range readTopic(t, client, app+"-loop") {
		if r.Key == "a-leak" {
			t.Errorf("message of a failed invocation was sent: loop %d/%d", r.Partition, r.Offset)
		}
	}
}

// TestBadRecordsGoToDeadLetterTopicOnceAndPartitionKeepsFlowing sends bad
// records of every kind, each followed by a good record on the same
// partitions. Each bad record lands once in <app>-dlq with the reason and
// its source; the good ones are processed, with no effect of the bad ones
// on the state.
func TestBadRecordsGoToDeadLetterTopicOnceAndPartitionKeepsFlowing(t *testing.T) {
	brokers, app := testBroker(t, "dlq")
	const retries = 3
	topo, reg := dlqApp(app)
	p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithRetries(retries, 2*time.Millisecond),
		WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 10*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	client := testClient(t, brokers)
	prod := newDLQProducer(t, brokers)
	cases := dlqCases(app, prod, retries)
	pa := partitionFor("a", 4)

	for i := range cases {
		c := &cases[i]
		c.tag = fmt.Sprintf("#bad-%d#", i)
		before := p.Stats()
		sources := c.write(c.tag)
		// a good record after it, on the same ingress and loop partitions
		prod.send(app+"-in", pa, []byte("a"), dlqJSON("ok", fmt.Sprintf("#good-%d#", i)))
		want := fmt.Sprintf("a=%d", i+1)
		waitFor(t, 10*time.Second, c.name+": the next good record processed", func() (bool, string) {
			var vals []string
			for _, r := range readTopic(t, client, app+"-out") {
				vals = append(vals, string(r.Value))
			}
			return strings.Contains(strings.Join(vals, " ")+" ", want+" "), fmt.Sprintf("egress %v, stats %+v", vals, p.Stats())
		})
		var dl []topicRecord
		waitFor(t, 10*time.Second, c.name+": dead letter", func() (bool, string) {
			dl = dlqRecords(t, client, app, c.tag)
			return len(dl) > 0, fmt.Sprintf("%d dead letters", len(dl))
		})
		r := dl[0]
		h := r.Headers
		if !strings.Contains(h["stateloop.error"], c.reason) {
			t.Errorf("%s: stateloop.error %q, want it to contain %q", c.name, h["stateloop.error"], c.reason)
		}
		matched := false
		for _, src := range sources {
			matched = matched || h["stateloop.source.topic"] == src.topic &&
				h["stateloop.source.partition"] == strconv.Itoa(int(src.partition)) &&
				(src.offset < 0 || h["stateloop.source.offset"] == strconv.FormatInt(src.offset, 10))
		}
		if !matched {
			t.Errorf("%s: source headers %s/%s/%s, want one of %+v", c.name, h["stateloop.source.topic"], h["stateloop.source.partition"], h["stateloop.source.offset"], sources)
		}
		if h["stateloop.function.type"] != c.fnType {
			t.Errorf("%s: stateloop.function.type %q, want %q", c.name, h["stateloop.function.type"], c.fnType)
		}
		if c.fnType != "" && h["stateloop.function.id"] != "a" {
			t.Errorf("%s: stateloop.function.id %q, want a", c.name, h["stateloop.function.id"])
		}
		after := p.Stats()
		if d := after.Failures - before.Failures; d != c.failures {
			t.Errorf("%s: %d failed invocation attempts counted, want %d", c.name, d, c.failures)
		}
		if d := after.DeadLetters - before.DeadLetters; d != 1 {
			t.Errorf("%s: %d dead letters counted, want 1", c.name, d)
		}
	}
	if s := p.Stats(); s.Aborts != 0 {
		t.Errorf("%d transactions aborted; bad records must not abort transactions", s.Aborts)
	}
	dlqCheckExactlyOnce(t, client, app, cases)
	// the state of a counts only the good records
	var n int64
	for _, r := range readTopic(t, client, string(topo.TableTopic(dlqFn))) {
		if r.Key == "a" {
			n = recDecodeCount(t, r.Value)
		}
	}
	if n != int64(len(cases)) {
		t.Errorf("table count of a: %d, want %d (the good records only)", n, len(cases))
	}
}

// TestDeadLettersExactlyOnceWhenTransactionsAbort sends the same bad
// records while every other commit fails: the dead letters of aborted
// transactions must not be visible, and each bad record is dead-lettered
// exactly once.
func TestDeadLettersExactlyOnceWhenTransactionsAbort(t *testing.T) {
	brokers, app := testBroker(t, "dlq-abort")
	const retries = 1
	var commits atomic.Int64
	faults := &Faults{BeforeCommit: func() error {
		if commits.Add(1)%2 == 1 {
			return errors.New("injected commit failure")
		}
		return nil
	}}
	topo, reg := dlqApp(app)
	p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithRetries(retries, time.Millisecond),
		WithSessionTimeout(2*time.Second), WithFaults(faults), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 10*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	client := testClient(t, brokers)
	prod := newDLQProducer(t, brokers)
	cases := dlqCases(app, prod, retries)
	pa := partitionFor("a", 4)
	for i := range cases {
		cases[i].tag = fmt.Sprintf("#bad-%d#", i)
		cases[i].write(cases[i].tag)
		prod.send(app+"-in", pa, []byte("a"), dlqJSON("ok", fmt.Sprintf("#good-%d#", i)))
	}
	waitFor(t, 15*time.Second, "every good record processed", func() (bool, string) {
		n := len(readTopic(t, client, app+"-out"))
		return n >= len(cases), fmt.Sprintf("%d egress records, stats %+v", n, p.Stats())
	})
	waitFor(t, 10*time.Second, "every dead letter", func() (bool, string) {
		n := len(readTopic(t, client, app+"-dlq"))
		return n >= len(cases), fmt.Sprintf("%d dead letters", n)
	})
	if s := p.Stats(); s.Aborts == 0 {
		t.Fatalf("no transaction aborted: the test did not exercise aborts (stats %+v)", s)
	}
	dlqCheckExactlyOnce(t, client, app, cases)
	var got []string
	for _, r := range readTopic(t, client, app+"-out") {
		got = append(got, string(r.Value))
	}
	want := make([]string, len(cases))
	for i := range want {
		want[i] = fmt.Sprintf("a=%d", i+1)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("egress %v, want %v", got, want)
	}
}

// TestDeadLetterTopicWithFewerPartitionsStillTakesDeadLetters: the
// dead-letter topic may exist with fewer partitions than the application
// (only the loop and table topics must match). A dead letter must go to a
// partition that exists, not block the input partition.
func TestDeadLetterTopicWithFewerPartitionsStillTakesDeadLetters(t *testing.T) {
	brokers, app := testBroker(t, "dlq-narrow")
	client := testClient(t, brokers)
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(app+"-dlq", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	topo, reg := dlqApp(app)
	p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithRetries(0, time.Millisecond),
		WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 10*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	prod := newDLQProducer(t, brokers)
	// a key whose partition does not exist in the dead-letter topic
	key := ""
	for i := 0; key == ""; i++ {
		if k := "id" + strconv.Itoa(i); partitionFor(k, 4) != 0 {
			key = k
		}
	}
	part := partitionFor(key, 4)
	prod.send(app+"-in", part, []byte(key), dlqJSON("perm", "#bad#"))
	prod.send(app+"-in", part, []byte(key), dlqJSON("ok", "#good#"))
	waitFor(t, 5*time.Second, "the dead letter and the next good record", func() (bool, string) {
		dl := len(dlqRecords(t, client, app, "#bad#"))
		out := len(readTopic(t, client, app+"-out"))
		return dl == 1 && out == 1, fmt.Sprintf("%d dead letters, %d egress records, stats %+v", dl, out, p.Stats())
	})
}

// TestOversizedOutputRecordGoesToDeadLetterTopic: an invocation whose
// egress record is too large to produce fails every transaction it is in.
// The record that caused it must be dead-lettered, not replayed forever
// (which blocks the partition, and every other record of its transaction).
func TestOversizedOutputRecordGoesToDeadLetterTopic(t *testing.T) {
	brokers, app := testBroker(t, "dlq-huge")
	client := testClient(t, brokers)
	topo, reg := dlqApp(app)
	p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 10*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	prod := newDLQProducer(t, brokers)
	part := partitionFor("a", 4)
	prod.send(app+"-in", part, []byte("a"), dlqJSON("huge", "#bad#"))
	prod.send(app+"-in", part, []byte("a"), dlqJSON("ok", "#good#"))
	waitFor(t, 5*time.Second, "the dead letter and the next good record", func() (bool, string) {
		dl := len(dlqRecords(t, client, app, "#bad#"))
		out := len(readTopic(t, client, app+"-out"))
		return dl == 1 && out == 1, fmt.Sprintf("%d dead letters, %d egress records, stats %+v", dl, out, p.Stats())
	})
}
