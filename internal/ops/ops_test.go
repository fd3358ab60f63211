package ops_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/ops"
	"github.com/stateloop/stateloop/internal/opstest"
	"github.com/stateloop/stateloop/internal/opstest/opsapp"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor"
)

func dial(t *testing.T, brokers []string, app string) *ops.Client {
	t.Helper()
	c, err := ops.Dial(context.Background(), brokers, app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// produce writes a plain record.
func produce(t *testing.T, client sarama.Client, topic string, key, value []byte) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value)}
	if key != nil {
		m.Key = sarama.ByteEncoder(key)
	}
	if _, _, err := sp.SendMessage(m); err != nil {
		t.Fatal(err)
	}
}

func long(t *testing.T, rec wire.StateRecord, name string) int64 {
	t.Helper()
	v, ok := rec[name]
	if !ok {
		t.Fatalf("no state %s in %v", name, rec)
	}
	n, err := codec.Int64().Decode(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDialAnUnknownApplicationNamesTheOnesThere(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	opsapp.Start(t, brokers, "shop")
	_, err := ops.Dial(context.Background(), brokers, "shpo")
	if !errors.Is(err, ops.ErrNoApplication) || !strings.Contains(err.Error(), "applications there: shop") {
		t.Errorf("got %v, want ErrNoApplication naming shop", err)
	}
}

// TestSetStateRacingIncrementsGivesExactCounts sends 400 increments to one
// counter from one goroutine while another sets the counter to 10,000 in
// the middle: the set lands between two increments, its before is the
// count the ones before it reached, every later increment counts on from
// 10,000, and the final count is 10,000 plus the increments after it.
func TestSetStateRacingIncrementsGivesExactCounts(t *testing.T) {
	checkSetStateRacingIncrements(t, kafkatest.StartKfake(t), "race")
}

// checkSetStateRacingIncrements is TestSetStateRacingIncrementsGivesExactCounts
// on brokers, for application app (a new one).
func checkSetStateRacingIncrements(t *testing.T, brokers []string, app string) {
	a := opsapp.Start(t, brokers, app)
	c := dial(t, brokers, app)
	const n = 400
	sent := make(chan int, n)
	var wg sync.WaitGroup
	wg.Go(func() {
		s, err := processor.NewSender(brokers, a.Topo)
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		for i := 1; i <= n; i++ {
			if err := s.Send(context.Background(), opstest.Address("hot"), opstest.Message(opstest.IncMsg{Seq: i})); err != nil {
				t.Error(err)
				return
			}
			sent <- i
			time.Sleep(2 * time.Millisecond) // the set has time to land among them
		}
	})
	for i := range sent {
		if i == n/3 {
			break
		}
	}
	res, err := c.SetState(context.Background(), opstest.Address("hot"), []ops.StateValue{{Name: "n", Text: []byte("10000")}}, ops.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	before := int(long(t, res.Before, "n"))
	if after := long(t, res.After, "n"); after != 10000 {
		t.Errorf("after = %d, want 10000", after)
	}
	if before < n/3 || before >= n {
		t.Errorf("the set came after %d increments; want it among them, after the first %d", before, n/3)
	}
	got := a.WaitEmitted(t, "hot", n)
	opstest.CheckCountsAroundSet(t, got, before, 10000)
	read, err := c.EditState(context.Background(), opstest.Address("hot"), wire.StateEdit{}, ops.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	if final := long(t, read.Before, "n"); final != 10000+int64(n-before) {
		t.Errorf("final count %d, want 10000 + %d increments after the set = %d", final, n-before, 10000+n-before)
	}
	t.Logf("the set landed after increment %d of %d", before, n)
}

// TestSetStateTypesValuesAndRefusesWhatTheFunctionDoesNotDeclare: a
// value without a type gets the declared one; an undeclared state, a
// wrong type and a value that does not parse are refused with reasons.
func TestSetStateTypesValuesAndRefusesWhatTheFunctionDoesNotDeclare(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	opsapp.Start(t, brokers, "types")
	c := dial(t, brokers, "types")
	ctx := context.Background()
	res, err := c.SetState(ctx, opstest.Address("x"), []ops.StateValue{{Name: "n", Text: []byte("7")}, {Name: "note", Text: []byte("hello")}}, ops.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Before) != 0 || long(t, res.After, "n") != 7 || codec.Display(string(res.After["note"].TypeName), res.After["note"].Value) != "hello" {
		t.Errorf("set answered before %v after %v", res.Before, res.After)
	}
	for _, tc := range []struct {
		name string
		v    ops.StateValue
		want string
	}{
		{"undeclared", ops.StateValue{Name: "nope", Text: []byte("1")}, "declares no such state"},
		{"undeclared with a type", ops.StateValue{Name: "nope", Type: functions.LongType.Name(), Text: []byte("1")}, `declares no state "nope"`},
		{"wrong type", ops.StateValue{Name: "n", Type: functions.StringType.Name(), Text: []byte("1")}, "is of type io.statefun.types/long"},
		{"not a number", ops.StateValue{Name: "n", Text: []byte("seven")}, `"seven" is not a valid io.statefun.types/long`},
	} {
		if _, err := c.SetState(ctx, opstest.Address("x"), []ops.StateValue{tc.v}, ops.DefaultWait); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	del, err := c.EditState(ctx, opstest.Address("x"), wire.StateEdit{Delete: []string{"note"}}, ops.DefaultWait)
	if err != nil || len(del.After) != 1 || len(del.Before) != 2 {
		t.Errorf("delete note: %v, before %v after %v", err, del.Before, del.After)
	}
}

// TestDeadLettersListFilterAndReplayOnce dead-letters messages of three
// kinds, lists and filters them, replays with a dry run first and then
// twice: each is delivered once, and the second run skips them all.
func TestDeadLettersListFilterAndReplayOnce(t *testing.T) {
	checkDeadLettersListFilterAndReplayOnce(t, kafkatest.StartKfake(t), "dlq")
}

// checkDeadLettersListFilterAndReplayOnce is
// TestDeadLettersListFilterAndReplayOnce on brokers, for application app
// (a new one).
func checkDeadLettersListFilterAndReplayOnce(t *testing.T, brokers []string, app string) {
	a := opsapp.Start(t, brokers, app)
	c := dial(t, brokers, app)
	ctx := context.Background()
	a.Broken.Store(true)
	a.Send(t, "d1", opstest.IncMsg{Seq: 1}, opstest.IncMsg{Seq: 2})
	a.Send(t, "d2", opstest.IncMsg{Seq: 3})
	a.WaitDeadLetters(t, 3)
	a.Broken.Store(false)
	a.Send(t, "d3", opstest.IncMsg{Seq: 4, Fail: "perm"})
	a.WaitDeadLetters(t, 4)

	all, errs := c.DeadLetters(ctx, ops.Filter{Partition: ops.AnyPartition}, 0)
	if len(errs) > 0 || len(all) != 4 {
		t.Fatalf("dead letters %d, errors %v; want 4", len(all), errs)
	}
	for _, d := range all {
		if d.Address == nil || d.Message == nil || d.Source == nil || d.Source.Topic != app+"-loop" || d.Replayed != nil || d.Time.IsZero() {
			t.Errorf("dead letter %s: %+v", d.Ref(), d)
		}
	}
	count := func(f ops.Filter) int {
		f.Partition = ops.AnyPartition
		if f.To == 0 {
			f.To = -1
		}
		got, _ := c.DeadLetters(ctx, f, 0)
		return len(got)
	}
	for name, tc := range map[string]struct {
		f    ops.Filter
		want int
	}{
		"by id":     {ops.Filter{ID: "d1"}, 2},
		"by type":   {ops.Filter{Type: opstest.Counter}, 4},
		"by reason": {ops.Filter{Reason: "FAILS FOR GOOD"}, 1},
		"none":      {ops.Filter{Type: "ops/other"}, 0},
	} {
		if got := count(tc.f); got != tc.want {
			t.Errorf("%s: %d dead letters, want %d", name, got, tc.want)
		}
	}
	one := all[0]
	if got, err := c.DeadLetter(ctx, one.Partition, one.Offset); err != nil || got.Offset != one.Offset || got.Reason != one.Reason {
		t.Errorf("DeadLetter(%s) = %+v, %v", one.Ref(), got, err)
	}
	last, _ := c.DeadLetters(ctx, ops.Filter{Partition: ops.AnyPartition}, 2)
	if len(last) != 2 || last[0].Time.Before(last[1].Time) {
		t.Errorf("the last 2: %v, want 2, newest first", last)
	}

	broken, _ := c.DeadLetters(ctx, ops.Filter{Partition: ops.AnyPartition, Reason: "broken"}, 0)
	dry := c.Replay(ctx, broken, true, ops.DefaultWait, nil)
	for _, o := range dry {
		if o.Status != "dry-run" {
			t.Errorf("dry run of %s: %s %v", o.DeadLetter.Ref(), o.Status, o.Err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := len(a.Emitted(t)); got != 0 {
		t.Fatalf("a dry run delivered messages to %d counters", got)
	}
	for _, o := range c.Replay(ctx, broken, false, ops.DefaultWait, nil) {
		if o.Status != "replayed" {
			t.Errorf("replay of %s: %s %v", o.DeadLetter.Ref(), o.Status, o.Err)
		}
	}
	if got := a.WaitEmitted(t, "d1", 2); len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Errorf("d1 counted %v, want messages 1 and 2 in order", got)
	}
	// again, with what the first list said (no markers): the runtime
	// drops them as duplicates
	for _, o := range c.Replay(ctx, broken, false, ops.DefaultWait, nil) {
		if o.Status != "duplicate" {
			t.Errorf("second replay of %s: %s %v, want duplicate", o.DeadLetter.Ref(), o.Status, o.Err)
		}
	}
	// and with a fresh list: the markers say they were replayed
	again, _ := c.DeadLetters(ctx, ops.Filter{Partition: ops.AnyPartition, Reason: "broken"}, 0)
	for _, o := range c.Replay(ctx, again, false, ops.DefaultWait, nil) {
		if o.Status != "skipped" || o.DeadLetter.Replayed == nil {
			t.Errorf("third replay of %s: %s, want skipped", o.DeadLetter.Ref(), o.Status)
		}
	}
	if n := count(ops.Filter{Replayed: "yes"}); n != 3 {
		t.Errorf("%d replayed dead letters, want 3", n)
	}
	// the one that fails for good fails again: a new dead letter
	perm, _ := c.DeadLetters(ctx, ops.Filter{Partition: ops.AnyPartition, ID: "d3"}, 0)
	if o := c.Replay(ctx, perm, false, ops.DefaultWait, nil); o[0].Status != "replayed" {
		t.Errorf("replay of d3: %s %v", o[0].Status, o[0].Err)
	}
	a.WaitDeadLetters(t, 5)
	time.Sleep(200 * time.Millisecond)
	emitted := a.Emitted(t)
	if len(emitted["d1"]) != 2 || len(emitted["d2"]) != 1 || len(emitted["d3"]) != 0 {
		t.Errorf("counts %v, want d1 twice, d2 once, d3 never", emitted)
	}
}

// TestDeadLettersThatCannotBeReplayedSayWhy: an ingress record without a
// key never reached a function; a record the runtime could not decode
// has no message.
func TestDeadLettersThatCannotBeReplayedSayWhy(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	a := opsapp.Start(t, brokers, "norep")
	c := dial(t, brokers, "norep")
	produce(t, a.Client, a.Topo.App+"-in", nil, opstest.Encode(opstest.IncMsg{Seq: 1}))
	produce(t, a.Client, a.Topo.App+"-loop", []byte("k"), []byte("not an envelope"))
	a.WaitDeadLetters(t, 2)
	dls, _ := c.DeadLetters(context.Background(), ops.Filter{Partition: ops.AnyPartition}, 0)
	outs := c.Replay(context.Background(), dls, false, ops.DefaultWait, nil)
	var whys []string
	for _, o := range outs {
		if o.Status != "refused" {
			t.Errorf("%s: %s, want refused", o.DeadLetter.Ref(), o.Status)
		}
		whys = append(whys, fmt.Sprint(o.Err))
	}
	slices.Sort(whys)
	if len(whys) != 2 || !strings.Contains(whys[0]+whys[1], "never reached a function") {
		t.Errorf("reasons %q, want one to say it never reached a function", whys)
	}
}

// TestTimersListAndCancel arms delayed messages at two counters, lists
// them by sender, and cancels one by its token and all of the other's.
func TestTimersListAndCancel(t *testing.T) {
	checkTimersListAndCancel(t, kafkatest.StartKfake(t), "tmr")
}

// checkTimersListAndCancel is TestTimersListAndCancel on brokers, for
// application app (a new one).
func checkTimersListAndCancel(t *testing.T, brokers []string, app string) {
	a := opsapp.Start(t, brokers, app)
	c := dial(t, brokers, app)
	ctx := context.Background()
	a.Send(t, "t1", opstest.IncMsg{Seq: 1, Arm: []string{"a", "b"}, Delay: time.Hour})
	a.Send(t, "t2", opstest.IncMsg{Seq: 2, Arm: []string{"x"}, Delay: 2 * time.Hour})
	a.WaitEmitted(t, "t2", 1)
	var all []ops.Timer
	deadline := time.Now().Add(30 * time.Second)
	for len(all) < 3 && time.Now().Before(deadline) {
		all, _ = c.Timers(ctx, ops.TimerFilter{})
		time.Sleep(50 * time.Millisecond)
	}
	if len(all) != 3 || all[2].Token != "x" || all[0].Message.Target != opstest.Address("t1") || all[0].Due.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("timers %+v, want a and b of t1, then x of t2, due in an hour or more", all)
	}
	if got, _ := c.Timers(ctx, ops.TimerFilter{Type: opstest.Counter, ID: "t1"}); len(got) != 2 {
		t.Errorf("timers of t1: %v, want 2", got)
	}
	cancelled, err := c.CancelTimers(ctx, opstest.Address("t1"), []string{"a", "nope"}, false, ops.DefaultWait)
	if err != nil || len(cancelled) != 1 || cancelled[0].Token != "a" {
		t.Errorf("cancel a: %v, %v", cancelled, err)
	}
	cancelled, err = c.CancelTimers(ctx, opstest.Address("t2"), nil, true, ops.DefaultWait)
	if err != nil || len(cancelled) != 1 || cancelled[0].Token != "x" {
		t.Errorf("cancel all of t2: %v, %v", cancelled, err)
	}
	if got, _ := c.Timers(ctx, ops.TimerFilter{}); len(got) != 1 || got[0].Token != "b" {
		t.Errorf("timers after the cancels: %+v, want b only", got)
	}
	if ops.ParseToken(ops.DisplayToken("\x00abc")) != "\x00abc" || ops.DisplayToken("\x00abc") != "auto:abc" {
		t.Error("an automatic token does not survive DisplayToken and ParseToken")
	}
}

// TestDescribeShowsWhatTheInstancesPublish runs two instances of the
// application: describe lists both, with the topology they publish, the
// owner of every partition and no lag once they are idle.
func TestDescribeShowsWhatTheInstancesPublish(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	a := opsapp.Start(t, brokers, "desc", processor.WithInstanceID("one"))
	opsapp.Start(t, brokers, "desc", processor.WithInstanceID("two"))
	a.Send(t, "z", opstest.IncMsg{Seq: 1})
	a.WaitEmitted(t, "z", 1)
	c := dial(t, brokers, "desc")
	var d ops.Description
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if d, err = c.Describe(context.Background()); err != nil {
			t.Fatal(err)
		}
		owned := 0
		for _, p := range d.Consumed {
			if p.Owner != "" {
				owned++
			}
		}
		if d.State == "Stable" && len(d.Members) == 2 && owned == len(d.Consumed) && d.Lag <= int64(len(d.Consumed)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("description after 30s: %+v", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var instances []string
	for _, m := range d.Members {
		if m.Info == nil {
			t.Fatalf("member %s publishes nothing", m.MemberID)
		}
		instances = append(instances, m.Info.Instance)
	}
	slices.Sort(instances)
	if !slices.Equal(instances, []string{"one", "two"}) {
		t.Errorf("instances %v, want one and two", instances)
	}
	if len(d.Functions) != 1 || d.Functions[0].Type != string(opstest.Counter) || !d.Functions[0].TableExists || !d.Functions[0].Listed ||
		len(d.Functions[0].State) != 2 || !slices.Equal(d.Functions[0].Ingresses, []string{"desc-in"}) {
		t.Errorf("functions %+v", d.Functions)
	}
	if len(d.Ingresses) != 2 || len(d.Egresses) != 1 || d.Egresses[0].Topics[0] != "desc-out" {
		t.Errorf("ingresses %+v egresses %+v", d.Ingresses, d.Egresses)
	}
	topics := map[string]int{}
	for _, p := range d.Consumed {
		topics[p.Topic]++
	}
	if topics["desc-loop"] != 4 || topics["desc-in"] != 4 || topics["desc-routed"] != 4 {
		t.Errorf("consumed partitions by topic %v, want 4 of each", topics)
	}
}
