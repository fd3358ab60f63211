package processor

import (
	"errors"
	"slices"
	"testing"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
)

// batchFake is the fake cluster with batched ends and topic ids; it counts
// what recovery asks for, and can fail the batched ends of one topic.
type batchFake struct {
	*fakeKafka
	batches, idBatches int
	batchTopics        []string
	single, singleIDs  []string // topics asked for on their own
	failTopic          string
}

func (b *batchFake) listEnds(parts []topicPart) map[topicPart]kafkaread.PartitionEnds {
	b.batches++
	out := map[topicPart]kafkaread.PartitionEnds{}
	for _, tp := range parts {
		b.batchTopics = append(b.batchTopics, tp.topic)
		if tp.topic == b.failTopic {
			out[tp] = kafkaread.PartitionEnds{Err: errors.New("not the leader")}
			continue
		}
		s, h, l, _ := b.fakeKafka.ends(tp.topic, tp.part)
		out[tp] = kafkaread.PartitionEnds{Start: s, HWM: h, LSO: l}
	}
	return out
}

func (b *batchFake) topicIDs(topics []string) (map[string]string, error) {
	b.idBatches++
	out := map[string]string{}
	for _, t := range topics {
		out[t] = ""
	}
	return out, nil
}

func (b *batchFake) ends(topic string, part int32) (int64, int64, int64, error) {
	b.single = append(b.single, topic)
	return b.fakeKafka.ends(topic, part)
}

func (b *batchFake) topicID(topic string) (string, error) {
	b.singleIDs = append(b.singleIDs, topic)
	return b.fakeKafka.topicID(topic)
}

// recoverEndsRig returns a processor of the counter app on the fake, with
// two committed table records of partition 0, and their keys and values.
func recoverEndsRig(t *testing.T) (*Processor, *fakeKafka, [][2][]byte) {
	t.Helper()
	topo, reg := counterApp("ends")
	p, err := New([]string{"fake:9092"}, topo, reg)
	if err != nil {
		t.Fatal(err)
	}
	fk := newFakeKafka()
	if err := p.ensureTopics(fk); err != nil {
		t.Fatal(err)
	}
	var recs [][2][]byte
	for i := 0; len(recs) < 2; i++ {
		k := key(i)
		if partitionFor(string(k), 4) != 0 {
			continue
		}
		v := encodeState(wire.StateRecord{"count": driver.StoredValue{TypeName: functions.LongType.Name(), Value: []byte{byte(i + 1)}}})
		recs = append(recs, [2][]byte{k, v})
		tp := topicPart{string(topo.TableTopic(counterFn)), 0}
		fk.logs[tp] = append(fk.logs[tp], fakeRecord{key: k, value: v})
	}
	return p, fk, recs
}

// recoverInto recovers loop partition 0 from cl into a new in-memory
// store, closed at the end of the test.
func recoverInto(t *testing.T, p *Processor, cl cluster) *store {
	t.Helper()
	st, err := openStore("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.close() })
	var asides []aside
	if err := p.recover(t.Context(), cl, st, 0, &asides); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRecoveryAsksForEveryChangelogsEndsAndIDsAtOnce: with a cluster that
// can batch, recovery of a partition asks for the ends of all its
// changelogs in one call and for their topic ids in another, nothing on
// its own, and the store gets the table's records.
func TestRecoveryAsksForEveryChangelogsEndsAndIDsAtOnce(t *testing.T) {
	p, fk, recs := recoverEndsRig(t)
	cl := &batchFake{fakeKafka: fk}
	st := recoverInto(t, p, cl)
	var asides []aside
	var want []string
	for _, pt := range theParts {
		for _, c := range pt.changelogs(p, st, 0, &asides) {
			want = append(want, c.topic)
		}
	}
	if len(want) < 4 {
		t.Fatalf("changelogs %v: want timers, idempotency, inbox and the table", want)
	}
	if cl.batches != 1 || cl.idBatches != 1 || !slices.Equal(cl.batchTopics, want) {
		t.Errorf("%d batches of ends for %v, %d of topic ids; want one of each, for %v", cl.batches, cl.batchTopics, cl.idBatches, want)
	}
	if len(cl.single) > 0 || len(cl.singleIDs) > 0 {
		t.Errorf("asked on their own: ends of %v, ids of %v; want none", cl.single, cl.singleIDs)
	}
	for _, r := range recs {
		got, err := st.get(counterFn, string(r[0]))
		if err != nil || !slices.Equal(got, r[1]) {
			t.Errorf("store value of %s: %x (%v), want %x", r[0], got, err, r[1])
		}
	}
}

// TestRecoveryAsksOnItsOwnForAChangelogWhoseBatchedEndsFailed: a topic
// the batch could not answer (a leader that moved, say) is asked for on
// its own, and its records are still recovered.
func TestRecoveryAsksOnItsOwnForAChangelogWhoseBatchedEndsFailed(t *testing.T) {
	p, fk, recs := recoverEndsRig(t)
	table := string(p.topo.TableTopic(counterFn))
	cl := &batchFake{fakeKafka: fk, failTopic: table}
	st := recoverInto(t, p, cl)
	if !slices.Equal(cl.single, []string{table}) {
		t.Errorf("ends asked on their own: %v, want only %s", cl.single, table)
	}
	for _, r := range recs {
		if got, _ := st.get(counterFn, string(r[0])); !slices.Equal(got, r[1]) {
			t.Errorf("store value of %s: %x, want %x", r[0], got, r[1])
		}
	}
}

// TestBatchedEndsAndTopicIDsAgreeWithSingleOnes: on a broker, listEnds and
// topicIDs answer what ends and topicID answer one at a time, for an
// empty partition, one with committed records and one with a transaction
// still open.
func TestBatchedEndsAndTopicIDsAgreeWithSingleOnes(t *testing.T) {
	brokers, app := testBroker(t, "batchends")
	client := testClient(t, brokers)
	cl := saramaCluster{client: client}
	topics := []string{app + "-a", app + "-b", app + "-c"}
	for _, tp := range topics {
		if err := cl.createTopic(tp, 2, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.waitReady(t.Context(), topics...); err != nil {
		t.Fatal(err)
	}
	produce(t, client, topics[1], [2][]byte{[]byte("x"), []byte("1")}, [2][]byte{[]byte("y"), []byte("2")})
	// an open transaction on c: its LSO stays below its high water mark
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Idempotent, sc.Producer.RequiredAcks, sc.Net.MaxOpenRequests = true, sarama.WaitForAll, 1
	sc.Producer.Return.Successes = true
	sc.Producer.Transaction.ID = app + "-txn"
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sp, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if err := sp.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topics[2], Partition: 0, Value: sarama.StringEncoder("open")}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sp.AbortTxn() }()

	var parts []topicPart
	for _, tp := range topics {
		for part := range int32(2) {
			parts = append(parts, topicPart{tp, part})
		}
	}
	batched := cl.listEnds(parts)
	for _, tp := range parts {
		s, h, l, err := cl.ends(tp.topic, tp.part)
		if err != nil {
			t.Fatal(err)
		}
		e := batched[tp]
		if e.Err != nil || e.Start != s || e.HWM != h || e.LSO != l {
			t.Errorf("%s/%d: batched %+v, alone start %d, hwm %d, lso %d", tp.topic, tp.part, e, s, h, l)
		}
	}
	if e := batched[topicPart{topics[2], 0}]; e.LSO >= e.HWM {
		t.Errorf("%s/0 with an open transaction: LSO %d, HWM %d; want the LSO below", topics[2], e.LSO, e.HWM)
	}
	ids, err := cl.topicIDs(topics)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		id, err := cl.topicID(tp)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := ids[tp]; !ok || got != id {
			t.Errorf("id of %s: batched %q (%v), alone %q", tp, got, ok, id)
		}
	}
}
