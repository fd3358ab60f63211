package gokaview_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

var (
	counterFn  = functions.TypeName("test/counter")
	wordType   = functions.NewType("test/word", codec.Text())
	countState = functions.NewState("count", functions.LongType)
)

// counterApp counts the words sent to each id.
func counterApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: counterFn,
		Function: functions.Router(functions.Handle(wordType, func(ctx functions.Context, _ string) error {
			n, _ := countState.Get(ctx)
			countState.Set(ctx, n+1)
			return nil
		})),
		State: []functions.StateSpec{countState},
	})
	topo := topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  []functions.TypeName{counterFn},
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(app + "-words"), ValueType: wordType.Name(), Targets: []functions.TypeName{counterFn}}},
	}
	return topo, reg
}

// sendWords writes n words to every id, one record per word.
func sendWords(t testing.TB, client sarama.Client, topic string, ids []string, n int) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	for range n {
		var msgs []*sarama.ProducerMessage
		for _, id := range ids {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder("w")})
		}
		if err := sp.SendMessages(msgs); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// committedCounts reads the table read_committed, without goka.
func committedCounts(t testing.TB, client sarama.Client, topic string) map[string]int64 {
	t.Helper()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions %s: %v", topic, err)
	}
	out := map[string]int64{}
	for _, p := range parts {
		start, _, lso, err := kafkaread.Ends(client, topic, p)
		if err != nil {
			t.Fatalf("ends %s/%d: %v", topic, p, err)
		}
		_, err = kafkaread.ReadCommitted(context.Background(), client, topic, p, start, lso, func(r kafkaread.Record) error {
			if r.Value == nil {
				delete(out, string(r.Key))
				return nil
			}
			n, err := decodeCount(r.Value)
			out[string(r.Key)] = n
			return err
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
	}
	return out
}

func decodeCount(b []byte) (int64, error) {
	v, err := gokaview.StateCodec{}.Decode(b)
	if err != nil {
		return 0, err
	}
	n, ok, err := gokaview.Value(v.(gokaview.State), countState.Name(), countState.Type())
	if err == nil && !ok {
		err = errors.New("no count in the state record")
	}
	return n, err
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
}

func runProcessor(t testing.TB, p *processor.Processor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("processor run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// table is a counter application's table whose log has committed
// transactions, aborted transactions in between, and aborted transactions
// at its end.
type table struct {
	brokers []string
	topo    topology.Topology
	reg     *functions.Registry
	client  sarama.Client
	ids     []string
	// want is the committed count of every id: perWord words each
	want    map[string]int64
	perWord int64
}

// newTable runs a counter application whose transactions fail now and
// then, until every word is counted; then it sends one more word to every
// id, lets every transaction fail and stops. The table then ends with
// aborted values one above the committed ones.
func newTable(t *testing.T, app string) *table {
	t.Helper()
	brokers := kafkatest.StartKfake(t)
	topo, reg := counterApp(app)
	tb := &table{brokers: brokers, topo: topo, reg: reg, client: kafkatest.Client(t, brokers), perWord: 10, want: map[string]int64{}}
	for i := range 20 {
		tb.ids = append(tb.ids, fmt.Sprintf("id%d", i))
	}
	var failAll atomic.Bool
	var commits atomic.Int64
	faults := &processor.Faults{BeforeCommit: func() error {
		if failAll.Load() || commits.Add(1)%4 == 0 {
			return errors.New("injected commit failure")
		}
		return nil
	}}
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond), processor.WithFaults(faults))
	if err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, p)
	waitFor(t, 15*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	tableTopic := string(topo.TableTopic(counterFn))
	for range tb.perWord {
		sendWords(t, tb.client, app+"-words", tb.ids, 1)
		time.Sleep(30 * time.Millisecond) // spread the words over transactions
	}
	for _, id := range tb.ids {
		tb.want[id] = tb.perWord
	}
	waitFor(t, 30*time.Second, "every word counted", func() (bool, string) {
		got := committedCounts(t, tb.client, tableTopic)
		return maps.Equal(got, tb.want), fmt.Sprintf("%v, stats %+v", got, p.Stats())
	})
	if s := p.Stats(); s.Aborts == 0 || s.Commits == 0 {
		t.Fatalf("want committed and aborted transactions, stats %+v", s)
	}

	// the aborted tail: every transaction fails from now on
	failAll.Store(true)
	base := p.Stats()
	sendWords(t, tb.client, app+"-words", tb.ids, 1)
	waitFor(t, 15*time.Second, "the last words processed and aborted twice", func() (bool, string) {
		s := p.Stats()
		return s.Invocations >= base.Invocations+2*int64(len(tb.ids)) && s.Aborts >= base.Aborts+2, fmt.Sprintf("%+v", s)
	})
	stop()
	if got := committedCounts(t, tb.client, tableTopic); !maps.Equal(got, tb.want) {
		t.Fatalf("committed counts after the aborted tail = %v, want %v", got, tb.want)
	}
	return tb
}

// recorder is a goka update callback that records every value a view
// applies, per key.
type recorder struct {
	mu   sync.Mutex
	seen map[string][]int64
}

func (r *recorder) update(ctx goka.UpdateContext, s storage.Storage, key string, value []byte) error {
	if value != nil {
		n, err := decodeCount(value)
		if err != nil {
			return err
		}
		r.mu.Lock()
		if r.seen == nil {
			r.seen = map[string][]int64{}
		}
		r.seen[key] = append(r.seen[key], n)
		r.mu.Unlock()
	}
	return goka.DefaultUpdate(ctx, s, key, value)
}

func (r *recorder) snapshot() map[string][]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]int64{}
	for k, v := range r.seen {
		out[k] = slices.Clone(v)
	}
	return out
}

// gokaLogger sends goka's log to the test log while the test runs.
type gokaLogger struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newGokaLogger(t testing.TB) *gokaLogger {
	l := &gokaLogger{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	return l
}

func (l *gokaLogger) log(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log("goka: " + strings.TrimRight(s, "\n"))
	}
}

func (l *gokaLogger) Print(v ...any)                 { l.log(fmt.Sprint(v...)) }
func (l *gokaLogger) Println(v ...any)               { l.log(fmt.Sprintln(v...)) }
func (l *gokaLogger) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }

// runnable is a *goka.View or a *gokaview.View.
type runnable interface {
	Run(context.Context) error
}

// runView runs a view until stop is called or the test ends.
func runView(t testing.TB, v runnable) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := v.Run(ctx); err != nil {
			t.Errorf("view run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("view did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitRunning waits until the view has recovered, at most timeout.
func waitRunning(v interface{ WaitRunning() <-chan struct{} }, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	select {
	case <-v.WaitRunning():
		return time.Since(start), true
	case <-time.After(timeout):
		return timeout, false
	}
}

func viewCounts(t testing.TB, v gokaview.Reader, ids []string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, id := range ids {
		n, ok, err := gokaview.Get(v, id, countState)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if ok {
			out[id] = n
		}
	}
	return out
}

// TestViewRecoversCommittedStateAndFollows: a goka view built with Options
// recovers a table whose log has aborted transactions in between and at
// its end, shows exactly the committed counts, and follows new commits.
func TestViewRecoversCommittedStateAndFollows(t *testing.T) {
	tb := newTable(t, "view")
	rec := &recorder{}
	view, err := gokaview.NewView(tb.brokers, tb.topo, counterFn,
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
		goka.WithViewLogger(newGokaLogger(t)),
		goka.WithViewCallback(rec.update))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := view.Topic(), string(tb.topo.TableTopic(counterFn)); got != want {
		t.Fatalf("view topic %q, want %q", got, want)
	}
	runView(t, view)
	took, ok := waitRunning(view, 30*time.Second)
	if !ok {
		t.Fatalf("view with Options did not recover within %v (state %v)", took, view.CurrentState())
	}
	t.Logf("view recovered in %v", took)
	if got := viewCounts(t, view, tb.ids); !maps.Equal(got, tb.want) {
		t.Fatalf("view after recovery = %v, want the committed counts %v", got, tb.want)
	}
	it, err := view.Iterator()
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for it.Next() {
		keys++
	}
	it.Release()
	if keys != len(tb.ids) {
		t.Errorf("view iterator: %d keys, want %d", keys, len(tb.ids))
	}
	for id, seen := range rec.snapshot() {
		if slices.Max(seen) > tb.perWord {
			t.Errorf("id %s: the view applied %v, above the committed %d: an aborted value", id, seen, tb.perWord)
		}
	}

	// a new processor redoes the aborted last words and counts new ones;
	// the running view follows
	p, err := processor.New(tb.brokers, tb.topo, tb.reg, processor.WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	sendWords(t, tb.client, tb.topo.App+"-words", tb.ids, 5)
	want := map[string]int64{}
	for _, id := range tb.ids {
		want[id] = tb.perWord + 1 + 5
	}
	waitFor(t, 30*time.Second, "the view to follow the new counts", func() (bool, string) {
		got := viewCounts(t, view, tb.ids)
		return maps.Equal(got, want), fmt.Sprintf("view %v, processor %+v", got, p.Stats())
	})
	if got := committedCounts(t, tb.client, string(tb.topo.TableTopic(counterFn))); !maps.Equal(got, want) {
		t.Errorf("table = %v, want %v", got, want)
	}
	for id, seen := range rec.snapshot() {
		for i := 1; i < len(seen); i++ {
			if seen[i] <= seen[i-1] {
				t.Errorf("id %s: the view applied %v: not increasing", id, seen)
				break
			}
		}
	}

	// the table now ends with commit markers; a view with a disk store
	// recovers it, and a later view on the same store resumes from the
	// stored offset
	dir := t.TempDir()
	diskView := func(want map[string]int64, above int64) {
		t.Helper()
		rec := &recorder{}
		v, err := gokaview.NewView(tb.brokers, tb.topo, counterFn,
			goka.WithViewStorageBuilder(storage.DefaultBuilder(dir)),
			goka.WithViewLogger(newGokaLogger(t)),
			goka.WithViewCallback(rec.update))
		if err != nil {
			t.Fatal(err)
		}
		stop := runView(t, v)
		defer stop()
		took, ok := waitRunning(v, 30*time.Second)
		if !ok {
			t.Fatalf("view on %s did not recover within %v (state %v)", dir, took, v.CurrentState())
		}
		if got := viewCounts(t, v, tb.ids); !maps.Equal(got, want) {
			t.Errorf("view on %s after recovery = %v, want %v", dir, got, want)
		}
		for id, seen := range rec.snapshot() {
			if slices.Min(seen) <= above {
				t.Errorf("id %s: the view on %s applied %v again, want only values above %d", id, dir, seen, above)
			}
		}
	}
	diskView(want, 0)
	stored := want[tb.ids[0]]
	sendWords(t, tb.client, tb.topo.App+"-words", tb.ids, 2)
	for id := range want {
		want[id] += 2
	}
	waitFor(t, 30*time.Second, "the last words counted", func() (bool, string) {
		got := committedCounts(t, tb.client, string(tb.topo.TableTopic(counterFn)))
		return maps.Equal(got, want), fmt.Sprint(got)
	})
	diskView(want, stored)
}

// TestStockViewFailsOnTransactionalTable pins down why Options has both
// parts, on a table that ends with aborted transactions:
//   - a stock view (read_uncommitted, high water mark as the end) never
//     finishes recovery, and applies aborted values meanwhile;
//   - a read_committed consumer alone still never finishes recovery: the
//     last offset is a marker no consumer receives;
//   - the topic manager alone recovers, but then reads the aborted tail and
//     shows values that were never committed.
func TestStockViewFailsOnTransactionalTable(t *testing.T) {
	tb := newTable(t, "stock")
	table := gokaview.Table(tb.topo, counterFn)
	aborted := tb.perWord + 1
	const patience = 5 * time.Second

	leaked := func(rec *recorder) []string {
		var ids []string
		for id, seen := range rec.snapshot() {
			if slices.Contains(seen, aborted) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}
	newView := func(t *testing.T, rec *recorder, opts ...goka.ViewOption) *goka.View {
		opts = append([]goka.ViewOption{
			goka.WithViewStorageBuilder(storage.MemoryBuilder()),
			goka.WithViewLogger(newGokaLogger(t)),
			goka.WithViewCallback(rec.update),
		}, opts...)
		v, err := goka.NewView(tb.brokers, table, gokaview.StateCodec{}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("stock", func(t *testing.T) {
		rec := &recorder{}
		v := newView(t, rec)
		stop := runView(t, v)
		if took, ok := waitRunning(v, patience); ok {
			t.Errorf("stock view recovered in %v; expected it to wait for the marker at HWM-1", took)
		}
		state := v.CurrentState()
		stop()
		if state != goka.ViewStateCatchUp {
			t.Errorf("stock view state %v, want %v (recovering)", state, goka.ViewStateCatchUp)
		}
		if ids := leaked(rec); len(ids) == 0 {
			t.Errorf("the stock view applied no aborted value %d: %v", aborted, rec.snapshot())
		} else {
			t.Logf("the stock view is still recovering after %v and applied the aborted value %d for %d ids", patience, aborted, len(ids))
		}
	})

	t.Run("consumer only", func(t *testing.T) {
		rec := &recorder{}
		v := newView(t, rec, goka.WithViewConsumerSaramaBuilder(gokaview.ConsumerBuilder()))
		stop := runView(t, v)
		if took, ok := waitRunning(v, patience); ok {
			t.Errorf("read_committed view with the stock topic manager recovered in %v; expected it to hang", took)
		}
		stop()
		if ids := leaked(rec); len(ids) > 0 {
			t.Errorf("a read_committed view applied the aborted value %d for %v", aborted, ids)
		}
		for id, seen := range rec.snapshot() {
			if seen[len(seen)-1] != tb.want[id] {
				t.Errorf("id %s: read_committed view applied %v, want it to end at %d", id, seen, tb.want[id])
			}
		}
	})

	t.Run("topic manager only", func(t *testing.T) {
		rec := &recorder{}
		v := newView(t, rec, goka.WithViewTopicManagerBuilder(gokaview.TopicManagerBuilder()))
		runView(t, v)
		if took, ok := waitRunning(v, 30*time.Second); !ok {
			t.Fatalf("view with the topic manager did not recover within %v", took)
		}
		// after recovery it reads on, into the aborted tail
		waitFor(t, 10*time.Second, "the read_uncommitted view to show an aborted value", func() (bool, string) {
			got := viewCounts(t, v, tb.ids)
			for _, n := range got {
				if n == aborted {
					return true, ""
				}
			}
			return false, fmt.Sprint(got)
		})
	})
}

func TestTable(t *testing.T) {
	topo, _ := counterApp("shop")
	if got, want := gokaview.Table(topo, counterFn), goka.GroupTable(goka.Group(topo.Group(counterFn))); got != want {
		t.Errorf("Table = %q, want the group table %q", got, want)
	}
	if got, want := string(gokaview.Table(topo, counterFn)), "shop-test_.counter-table"; got != want {
		t.Errorf("Table = %q, want %q", got, want)
	}
}

func TestStateCodec(t *testing.T) {
	s := gokaview.State{
		"count": {TypeName: functions.LongType.Name(), Value: mustEncode(t, functions.LongType, 42)},
		"name":  {TypeName: functions.StringType.Name(), Value: mustEncode(t, functions.StringType, "Alice")},
	}
	var c goka.Codec = gokaview.StateCodec{}
	b, err := c.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if b2, err := c.Encode(&s); err != nil || string(b2) != string(b) {
		t.Errorf("Encode(*State) = %x, %v; want %x", b2, err, b)
	}
	v, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(gokaview.State)
	if n, ok, err := gokaview.Value(got, "count", functions.LongType); n != 42 || !ok || err != nil {
		t.Errorf("Value(count) = %d, %v, %v; want 42, true, nil", n, ok, err)
	}
	if name, ok, err := gokaview.Value(got, "name", functions.StringType); name != "Alice" || !ok || err != nil {
		t.Errorf("Value(name) = %q, %v, %v; want Alice, true, nil", name, ok, err)
	}
	if _, ok, err := gokaview.Value(got, "missing", functions.LongType); ok || err != nil {
		t.Errorf("Value(missing) = %v, %v; want false, nil", ok, err)
	}
	var de *functions.DecodeError
	if _, ok, err := gokaview.Value(got, "name", functions.LongType); ok || !errors.As(err, &de) {
		t.Errorf("Value(name) as a long = %v, %v; want a DecodeError", ok, err)
	}
	// decoding does not alias its input
	for i := range b {
		b[i] = 0
	}
	if n, _, _ := gokaview.Value(got, "count", functions.LongType); n != 42 {
		t.Errorf("the decoded state changed with its input: count %d", n)
	}
	if b, err := c.Encode(gokaview.State{}); err != nil || b != nil {
		t.Errorf("Encode(empty) = %x, %v; want nil (a tombstone)", b, err)
	}
	if _, err := c.Encode("x"); err == nil {
		t.Error("Encode(string) succeeded")
	}
	if _, err := c.Decode([]byte{0xff}); err == nil {
		t.Error("Decode(garbage) succeeded")
	}
}

func mustEncode[T any](t *testing.T, typ functions.Type[T], v T) []byte {
	t.Helper()
	b, err := typ.Codec().Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
