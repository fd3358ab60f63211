package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/ops"
	"github.com/stateloop/stateloop/internal/opstest"
	"github.com/stateloop/stateloop/internal/opstest/opsapp"
	"github.com/stateloop/stateloop/processor"
)

// opsCLI runs the opstest application and the CLI against it.
type opsCLI struct {
	app     *opsapp.App
	brokers string
}

func startOpsCLI(t *testing.T, name string) opsCLI {
	t.Helper()
	brokers := kafkatest.StartKfake(t)
	return opsCLI{app: opsapp.Start(t, brokers, name), brokers: strings.Join(brokers, ",")}
}

// run runs the CLI with --brokers and --app.
func (o opsCLI) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return cli(ctx, nil, append(args, "--brokers", o.brokers, "--app", o.app.Topo.App)...)
}

func (o opsCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	r := o.run(t, args...)
	if r.err != nil {
		t.Fatalf("stateloop %s: %v\nstdout:\n%s", strings.Join(args, " "), r.err, r.out)
	}
	return r.out
}

// fails runs the CLI and wants an error with each of want.
func (o opsCLI) fails(t *testing.T, args []string, want ...string) result {
	t.Helper()
	r := o.run(t, args...)
	if r.err == nil {
		t.Errorf("stateloop %s: no error; output:\n%s", strings.Join(args, " "), r.out)
		return r
	}
	for _, w := range want {
		if !strings.Contains(r.err.Error(), w) {
			t.Errorf("stateloop %s: error %q, want it to say %q", strings.Join(args, " "), r.err, w)
		}
	}
	return r
}

func TestStateSetAndDeleteGoThroughTheApplication(t *testing.T) {
	o := startOpsCLI(t, "clistate")
	o.app.Send(t, "c1", opstest.IncMsg{Seq: 1})
	o.app.WaitEmitted(t, "c1", 1)
	var st ops.StateView
	out := o.must(t, "state", "set", "--type", "ops/counter", "--id", "c1", "--state", "n", "41")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("state set printed %q: %v", out, err)
	}
	if st.Address != "ops/counter/c1" || st.Before["n"].Value != float64(1) || st.After["n"].Value != float64(41) || st.After["n"].Type != "io.statefun.types/long" {
		t.Errorf("state set printed %s", out)
	}
	o.app.Send(t, "c1", opstest.IncMsg{Seq: 2})
	if got := o.app.WaitEmitted(t, "c1", 2); got[1].N != 42 {
		t.Errorf("the message after the set counted %d, want 42", got[1].N)
	}
	o.must(t, "state", "set", "--type", "ops/counter", "--id", "c1", "--state", "note", "--value-type", "io.statefun.types/string", "hi")
	got := o.must(t, "state", "get", "--type", "ops/counter", "--id", "c1")
	if !strings.Contains(got, `"note":{"type":"io.statefun.types/string","value":"hi"}`) || !strings.Contains(got, `"value":42`) {
		t.Errorf("state get after the sets: %s", got)
	}
	st = ops.StateView{}
	out = o.must(t, "state", "delete", "--type", "ops/counter", "--id", "c1", "--state", "note")
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Before) != 2 || len(st.After) != 1 {
		t.Errorf("state delete --state note printed %s", out)
	}
	st = ops.StateView{}
	out = o.must(t, "state", "delete", "--type", "ops/counter", "--id", "c1", "--all")
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.After) != 0 {
		t.Errorf("state delete --all printed %s", out)
	}

	o.fails(t, []string{"state", "set", "--type", "ops/counter", "--id", "c1", "--state", "nope", "1"}, `declares no such state`)
	o.fails(t, []string{"state", "set", "--type", "ops/counter", "--id", "c1", "--state", "n", "--value-type", "io.statefun.types/int", "1"},
		"refused by the application", "is of type io.statefun.types/long, not io.statefun.types/int")
	o.fails(t, []string{"state", "set", "--type", "ops/counter", "--id", "c1", "--state", "n", "many"}, `"many" is not a valid io.statefun.types/long`)
	// every problem of the flags at once
	o.fails(t, []string{"state", "set", "--type", "nope", "--id", "c1", "--value-type", "x", "--timeout", "-1s"},
		"--type", "--state: missing", "--value-type", "VALUE or --value-file", "--timeout")
	o.fails(t, []string{"state", "delete", "--type", "ops/counter", "--id", "c1"}, "--state) or give --all")
}

// TestStateSetRacingMessagesGivesExactCounts runs `stateloop state set`
// on a counter while 300 increments to it are being sent: the set lands
// between two increments (its "before" is the count the ones before it
// reached), every later increment counts on from the value set, and the
// final state, read with state get, is that value plus the increments
// after it.
func TestStateSetRacingMessagesGivesExactCounts(t *testing.T) {
	o := startOpsCLI(t, "clirace")
	const n = 300
	sent := make(chan int, n)
	var wg sync.WaitGroup
	wg.Go(func() {
		s, err := processor.NewSender(o.app.Brokers, o.app.Topo)
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
	out := o.must(t, "state", "set", "--type", "ops/counter", "--id", "hot", "--state", "n", "5000")
	wg.Wait()
	var st ops.StateView
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("state set printed %q: %v", out, err)
	}
	before, ok := st.Before["n"].Value.(float64)
	if !ok || st.After["n"].Value != float64(5000) {
		t.Fatalf("state set printed %s, want a count before and 5000 after", out)
	}
	if int(before) < n/3 || int(before) >= n {
		t.Errorf("the set came after %v increments; want it among them, after the first %d", before, n/3)
	}
	opstest.CheckCountsAroundSet(t, o.app.WaitEmitted(t, "hot", n), int(before), 5000)
	want := 5000 + n - int(before)
	if got := o.must(t, "state", "get", "--type", "ops/counter", "--id", "hot"); !strings.Contains(got, fmt.Sprintf(`"n":{"type":"io.statefun.types/long","value":%d}`, want)) {
		t.Errorf("state get after the increments: %s, want n = 5000 + %d increments after the set = %d", got, n-int(before), want)
	}
	t.Logf("the set landed after increment %v of %d", before, n)
}

func TestDLQListShowAndReplay(t *testing.T) {
	o := startOpsCLI(t, "clidlq")
	o.app.Broken.Store(true)
	o.app.Send(t, "d1", opstest.IncMsg{Seq: 1}, opstest.IncMsg{Seq: 2})
	o.app.Send(t, "d2", opstest.IncMsg{Seq: 3})
	o.app.WaitDeadLetters(t, 3)
	o.app.Broken.Store(false)

	list := o.must(t, "dlq", "list")
	if !strings.HasPrefix(list, "DEAD LETTER") || strings.Count(list, "  ops/counter/d1  ") != 2 || !strings.Contains(list, "the counter is broken") ||
		!strings.HasSuffix(list, "3 dead letters in clidlq-dlq\n") {
		t.Errorf("dlq list:\n%s", list)
	}
	ref := regexp.MustCompile(`(?m)^(\d+/\d+) .*ops/counter/d2`).FindStringSubmatch(list)
	if ref == nil {
		t.Fatalf("no dead letter of d2 in:\n%s", list)
	}
	jsonList := o.must(t, "dlq", "list", "--id", "d1", "--format", "json")
	if lines := strings.Split(strings.TrimSpace(jsonList), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"function_id":"d1"`) {
		t.Errorf("dlq list --id d1 --format json:\n%s", jsonList)
	}
	show := o.must(t, "dlq", "show", ref[1])
	for _, want := range []string{"dead letter  " + ref[1], "reason", "the counter is broken", "address      ops/counter/d2", "message      ops/inc to ops/counter/d2", `"seq":3`, "replayed     no"} {
		if !strings.Contains(show, want) {
			t.Errorf("dlq show %s does not say %q:\n%s", ref[1], want, show)
		}
	}

	dry := o.must(t, "dlq", "replay", "--id", "d1", "--dry-run")
	if strings.Count(dry, " ops/counter/d1 dry-run\n") != 2 || !strings.HasSuffix(dry, "2 dry-run\n") {
		t.Errorf("dlq replay --dry-run:\n%s", dry)
	}
	if got := o.must(t, "dlq", "replay", "--id", "d1"); strings.Count(got, " ops/counter/d1 replayed\n") != 2 || !strings.HasSuffix(got, "2 replayed\n") {
		t.Errorf("dlq replay --id d1:\n%s", got)
	}
	if got := o.must(t, "dlq", "replay", ref[1]); !strings.HasSuffix(got, "1 replayed\n") {
		t.Errorf("dlq replay %s:\n%s", ref[1], got)
	}
	if got := o.must(t, "dlq", "replay", "--all"); !strings.HasSuffix(got, "3 skipped\n") {
		t.Errorf("dlq replay --all after the replays:\n%s", got)
	}
	o.app.WaitEmitted(t, "d2", 1)
	if got := o.app.WaitEmitted(t, "d1", 2); len(got) != 2 {
		t.Errorf("d1 counted %v", got)
	}
	if got := o.must(t, "dlq", "list", "--replayed", "no"); !strings.HasSuffix(got, "0 dead letters in clidlq-dlq\n") {
		t.Errorf("dlq list --replayed no:\n%s", got)
	}
	if got := o.must(t, "dlq", "show", ref[1]); !regexp.MustCompile(`replayed +20\d\d-`).MatchString(got) {
		t.Errorf("dlq show after the replay:\n%s", got)
	}

	o.fails(t, []string{"dlq", "replay"}, "no dead letters chosen")
	o.fails(t, []string{"dlq", "replay", "0/1", "--id", "x"}, "not several")
	o.fails(t, []string{"dlq", "replay", "--offset", "3-1", "--replayed", "maybe"}, "--offset", "--replayed")
	o.fails(t, []string{"dlq", "list", "--offset", "5"}, "give --partition too")
	o.fails(t, []string{"dlq", "show", "zero"}, "want PARTITION/OFFSET")
	o.fails(t, []string{"dlq", "show", "0/99999"}, "no dead letter 0/99999")
	r := cli(context.Background(), nil, "dlq", "list", "--brokers", o.brokers, "--app", "nosuch")
	if r.err == nil || !strings.Contains(r.err.Error(), "no such application nosuch") || !strings.Contains(r.err.Error(), "clidlq") {
		t.Errorf("dlq list of an application that is not there: %v", r.err)
	}
}

func TestTimersListAndCancelCommands(t *testing.T) {
	o := startOpsCLI(t, "clitimers")
	o.app.Send(t, "t1", opstest.IncMsg{Seq: 1, Arm: []string{"a", "b"}, Delay: time.Hour})
	o.app.Send(t, "t2", opstest.IncMsg{Seq: 2, Arm: []string{"c"}, Delay: time.Hour})
	o.app.WaitEmitted(t, "t2", 1)
	var list string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasSuffix(list, "3 delayed messages waiting\n") && time.Now().Before(deadline) {
		list = o.must(t, "timers", "list")
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(list, "DUE") || !strings.Contains(list, "ops/counter/t1  a      ops/counter/t1  ops/inc {\"seq\":1000}") {
		t.Errorf("timers list:\n%s", list)
	}
	if got := o.must(t, "timers", "list", "--type", "ops/counter", "--id", "t2", "--format", "json"); strings.Count(got, "\n") != 1 || !strings.Contains(got, `"token":"c"`) {
		t.Errorf("timers list of t2 as JSON:\n%s", got)
	}
	if got := o.must(t, "timers", "cancel", "--type", "ops/counter", "--id", "t1", "--token", "a", "--token", "zz"); !strings.HasSuffix(got, "1 delayed messages of ops/counter/t1 cancelled\n") {
		t.Errorf("timers cancel a:\n%s", got)
	}
	if got := o.must(t, "timers", "cancel", "--type", "ops/counter", "--id", "t2", "--all"); !strings.Contains(got, " c ") {
		t.Errorf("timers cancel --all of t2:\n%s", got)
	}
	if got := o.must(t, "timers", "list"); !strings.HasSuffix(got, "1 delayed messages waiting\n") || !strings.Contains(got, " b ") {
		t.Errorf("timers left:\n%s", got)
	}
	o.fails(t, []string{"timers", "cancel", "--type", "ops/counter", "--id", "t1"}, "--token", "--all")
	o.fails(t, []string{"timers", "list", "--id", "t1", "--to", "x"}, "--id needs --type", "--to")
}

func TestDescribeCommand(t *testing.T) {
	o := startOpsCLI(t, "clidesc")
	o.app.Send(t, "z", opstest.IncMsg{Seq: 1})
	o.app.WaitEmitted(t, "z", 1)
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out, "Stable, 1 members") && time.Now().Before(deadline) {
		out = o.must(t, "describe")
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{
		"application clidesc: 4 partitions, consumer group clidesc Stable, 1 members",
		"ops/counter  clidesc-ops_.counter-table  n (io.statefun.types/long); note (io.statefun.types/string); from clidesc-in",
		"clidesc-in      ops/inc  -> ops/counter", "clidesc-routed  ops/inc  -> a router",
		"ops/out  -> clidesc-out",
		"clidesc-loop    0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe does not say %q:\n%s", want, out)
		}
	}
	var d struct {
		App     string
		Members []struct{ Info struct{ App string } }
	}
	if err := json.Unmarshal([]byte(o.must(t, "describe", "--format", "json")), &d); err != nil || d.App != "clidesc" || len(d.Members) != 1 || d.Members[0].Info.App != "clidesc" {
		t.Errorf("describe --format json: %+v, %v", d, err)
	}
}
