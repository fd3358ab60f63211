package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// sentAt parses "sent N bytes to topic T, partition P, offset O".
func sentAt(t *testing.T, out string) string {
	t.Helper()
	var n, p, o int
	var topic string
	if _, err := fmt.Sscanf(out, "sent %d bytes to topic %s partition %d, offset %d", &n, &topic, &p, &o); err != nil {
		t.Fatalf("send printed %q: %v", out, err)
	}
	return fmt.Sprintf("%d/%d", p, o)
}

func TestSendConsumeRoundTrip(t *testing.T) {
	startBroker(t)
	file := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(file, []byte{0xff, 1, 'x'}, 0o644); err != nil {
		t.Fatal(err)
	}
	at1 := sentAt(t, mustCLI(t, "send", "--topic", "t", "--key", "k1", "hello world"))
	at2 := sentAt(t, mustCLI(t, "send", "--topic", "t", "--value-file", file))
	r := cli(context.Background(), strings.NewReader("from stdin\n"), "send", "--topic", "t", "--key", "k 2", "--value-file", "-")
	if r.err != nil {
		t.Fatal(r.err)
	}
	at3 := sentAt(t, r.out)

	want := []string{
		at1 + " k1 hello world",
		at2 + ` (null) "\xff\x01x"`,
		at3 + ` "k 2" "from stdin\n"`,
	}
	out := mustCLI(t, "consume", "--topic", "t", "-n", "3", "--timeout", "20s")
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("consume printed\n%s\nwant (in any order)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	out = mustCLI(t, "consume", "--topic", "t", "-n", "3", "--timeout", "20s", "--format", "json")
	recs := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		recs[fmt.Sprintf("%v/%v", rec["partition"], rec["offset"])] = rec
		if rec["topic"] != "t" || rec["timestamp"] == nil {
			t.Errorf("line %q: want topic t and a timestamp", line)
		}
	}
	if r := recs[at1]; r["key"] != "k1" || r["value"] != "hello world" {
		t.Errorf("json record %s: got %v", at1, r)
	}
	if r := recs[at2]; r["key"] != nil || r["value"] != nil || r["value_base64"] != "/wF4" {
		t.Errorf("json record %s: got %v, want a null key and value_base64 /wF4", at2, r)
	}
	if r := recs[at3]; r["key"] != "k 2" || r["value"] != "from stdin\n" {
		t.Errorf("json record %s: got %v", at3, r)
	}

	r = cli(context.Background(), nil, "consume", "--topic", "t", "-n", "4", "--timeout", "500ms")
	if r.err == nil || !strings.Contains(r.err.Error(), "timed out after 500ms with 3 of 4 records from topic t") {
		t.Errorf("consume -n 4: got %v, want a timeout with 3 of 4 records", r.err)
	}
	if n := strings.Count(r.out, "\n"); n != 3 {
		t.Errorf("consume -n 4 printed %d lines before timing out, want 3:\n%s", n, r.out)
	}

	// without -n, --timeout is the normal end
	r = cli(context.Background(), nil, "consume", "--topic", "t", "--timeout", "500ms")
	if r.err != nil || strings.Count(r.out, "\n") != 3 {
		t.Errorf("consume --timeout: got %v and output\n%s\nwant success with 3 records", r.err, r.out)
	}
}

// TestConsumeIsReadCommitted writes an aborted and a committed transaction
// with headers: consume must show only the committed record.
func TestConsumeIsReadCommitted(t *testing.T) {
	addr := startBroker(t)
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Transaction.ID = "test-txn"
	sc.Net.MaxOpenRequests = 1
	sp, err := sarama.NewSyncProducer([]string{addr}, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	txn := func(value string, commit bool) {
		t.Helper()
		if err := sp.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{
			Topic: "tx", Partition: 0, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(value),
			Headers: []sarama.RecordHeader{{Key: []byte("reason"), Value: []byte("because")}, {Key: []byte("n"), Value: []byte("1")}},
		}); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = sp.CommitTxn()
		} else {
			err = sp.AbortTxn()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	txn("aborted", false)
	txn("committed", true)

	r := cli(context.Background(), nil, "consume", "--topic", "tx", "-n", "2", "--timeout", "1s")
	if r.err == nil || !strings.Contains(r.err.Error(), "1 of 2 records") {
		t.Errorf("got %v, want a timeout with 1 of 2 records", r.err)
	}
	if strings.Contains(r.out, "aborted") {
		t.Errorf("consume showed the aborted record:\n%s", r.out)
	}
	if !strings.HasSuffix(r.out, " k committed\n  header reason=because\n  header n=1\n") {
		t.Errorf("got\n%s\nwant the committed record and its headers", r.out)
	}
}

// TestConsumeFromEnd reads with --from-beginning=false while records are
// being written: it must skip the record that was there before it started.
func TestConsumeFromEnd(t *testing.T) {
	startBroker(t)
	mustCLI(t, "send", "--topic", "live", "--key", "k", "old")
	done := make(chan result, 1)
	go func() {
		done <- cli(context.Background(), nil, "consume", "--topic", "live", "--from-beginning=false", "-n", "1", "--timeout", "20s")
	}()
	for {
		mustCLI(t, "send", "--topic", "live", "--key", "k", "new")
		select {
		case r := <-done:
			if r.err != nil || !strings.HasSuffix(r.out, " k new\n") {
				t.Fatalf("got %v and %q, want one new record", r.err, r.out)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestConsumeWaitsForTopic starts consume before the topic exists.
func TestConsumeWaitsForTopic(t *testing.T) {
	startBroker(t)
	done := make(chan result, 1)
	go func() {
		done <- cli(context.Background(), nil, "consume", "--topic", "later", "-n", "1", "--timeout", "20s")
	}()
	time.Sleep(300 * time.Millisecond)
	mustCLI(t, "send", "--topic", "later", "--key", "k", "v")
	r := <-done
	if r.err != nil || !strings.HasSuffix(r.out, " k v\n") {
		t.Fatalf("got %v, output %q, want the record", r.err, r.out)
	}
	if !strings.Contains(r.errOut, "topic later does not exist yet; waiting") {
		t.Errorf("got stderr %q, want a note that consume waits", r.errOut)
	}
}

// TestSendToFunctionAddress runs the greeter and sends a message straight
// to an address, bypassing the ingress.
func TestSendToFunctionAddress(t *testing.T) {
	addr := startBroker(t)
	r := cli(context.Background(), nil, "send", "--app", "greeter", "--to", "greeter/greet/Alice", "--type", "greeter/name", "Alice")
	if r.err == nil || !strings.Contains(r.err.Error(), "start it once with `stateloop run greeter`") {
		t.Errorf("before the application ran: got %v, want advice to start it", r.err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	out := &kafkatest.SyncBuffer{}
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = app.Run(ctx, app.Flags{Brokers: []string{addr}, Partitions: 4, CommitInterval: 20 * time.Millisecond, LogLevel: "error"}, greeter.Build, out)
	}()
	defer func() {
		cancel()
		<-done
		if runErr != nil {
			t.Errorf("app.Run: %v", runErr)
		}
	}()
	waitFor(t, out, done, "application greeter ready")

	got := mustCLI(t, "send", "--app", "greeter", "--to", "greeter/greet/Alice", "--type", "greeter/name", "Alice")
	if want := "sent greeter/name message to greeter/greet/Alice (application greeter, topic greeter-loop)\n"; got != want {
		t.Errorf("send printed %q, want %q", got, want)
	}
	mustCLI(t, "send", "--topic", "names", "--key", "Alice", "Alice")
	got = mustCLI(t, "consume", "--topic", "greetings", "-n", "2", "--timeout", "20s")
	if !strings.Contains(got, " Alice Hello Alice!\n") || !strings.Contains(got, " Alice Hello again, Alice!\n") {
		t.Errorf("greetings:\n%s\nwant Hello Alice! then Hello again, Alice!", got)
	}

	r = cli(context.Background(), nil, "send", "--app", "greeter", "--partitions", "8", "--to", "greeter/greet/Bob", "--type", "greeter/name", "Bob")
	if r.err == nil || !strings.Contains(r.err.Error(), "topic greeter-loop has 4 partitions: pass --partitions 4") {
		t.Errorf("wrong --partitions: got %v", r.err)
	}
}

func TestEncodeMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ   functions.TypeName
		value string
		want  functions.Message
	}{
		{functions.StringType.Name(), "héllo", functions.StringType.Of("héllo")},
		{functions.StringType.Name(), " keep spaces\n", functions.StringType.Of(" keep spaces\n")},
		{functions.LongType.Name(), "-42\n", functions.LongType.Of(-42)},
		{functions.IntType.Name(), "7", functions.IntType.Of(7)},
		{functions.BoolType.Name(), "true", functions.BoolType.Of(true)},
		{functions.FloatType.Name(), "1.5", functions.FloatType.Of(1.5)},
		{functions.DoubleType.Name(), "-2.25", functions.DoubleType.Of(-2.25)},
		{"shop/order", `{"id":1}`, functions.NewMessage("shop/order", []byte(`{"id":1}`))},
	} {
		got, err := encodeMessage(tc.typ, []byte(tc.value))
		if err != nil {
			t.Errorf("%s %q: %v", tc.typ, tc.value, err)
			continue
		}
		if got.TypeName() != tc.want.TypeName() || !bytes.Equal(got.Bytes(), tc.want.Bytes()) {
			t.Errorf("%s %q: got %s %x, want %s %x", tc.typ, tc.value, got.TypeName(), got.Bytes(), tc.want.TypeName(), tc.want.Bytes())
		}
	}
	for _, tc := range []struct {
		typ   functions.TypeName
		value string
	}{
		{functions.LongType.Name(), "x"},
		{functions.IntType.Name(), "3000000000"},
		{functions.BoolType.Name(), "yes please"},
		{functions.StringType.Name(), "\xff"},
	} {
		if _, err := encodeMessage(tc.typ, []byte(tc.value)); err == nil {
			t.Errorf("%s %q: got no error", tc.typ, tc.value)
		}
	}
}

func TestSendValidationListsEveryProblem(t *testing.T) {
	t.Setenv(app.EnvBrokers, "")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"nothing", []string{"send"}, []string{"nothing to send", "no destination"}},
		{"both destinations and values", []string{"send", "--topic", "t", "--to", "a/b/c", "--value-file", "f", "v"},
			[]string{"both VALUE and --value-file", "both --topic and --to"}},
		{"message without app and type", []string{"send", "--to", "a/b", "--key", "k", "v"},
			[]string{"--key is for records", "--app: missing", `--to "a/b": want namespace/name/id`, "--type: missing"}},
		{"record with message flags", []string{"send", "--topic", "t", "--app", "a", "--type", "x/y", "--brokers", "nohost", "v"},
			[]string{"--app is for messages", "--type is for messages", `--brokers "nohost"`}},
		{"two values", []string{"send", "--topic", "t", "a", "b"}, []string{"got 2 arguments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(context.Background(), nil, tc.args...)
			if r.err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, r.err)
				}
			}
			if got := strings.Count(r.err.Error(), "\n") + 1; got != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", got, len(tc.want), r.err)
			}
		})
	}
}

func TestConsumeValidation(t *testing.T) {
	r := cli(context.Background(), nil, "consume", "-n", "-1", "--timeout", "-1s", "--format", "xml", "--brokers", "")
	for _, w := range []string{"--brokers: none given", "--topic: missing", "-n -1", "--timeout -1s", `--format "xml"`} {
		if r.err == nil || !strings.Contains(r.err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, r.err)
		}
	}
}

func TestCannotConnectSaysWhatToDo(t *testing.T) {
	for _, args := range [][]string{
		{"consume", "--brokers", "127.0.0.1:1", "--topic", "t"},
		{"send", "--brokers", "127.0.0.1:1", "--topic", "t", "v"},
		{"send", "--brokers", "127.0.0.1:1", "--app", "a", "--to", "a/b/c", "--type", "a/b", "v"},
	} {
		r := cli(context.Background(), nil, args...)
		if r.err == nil || !strings.Contains(r.err.Error(), "cannot connect to Kafka at 127.0.0.1:1: is Kafka running there? start one with `stateloop broker`") {
			t.Errorf("%s: got %v, want advice", strings.Join(args, " "), r.err)
		}
	}
}

func TestRunNeedsAKnownApplication(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"run", "nope"}, {"run", "greeter", "extra"}} {
		r := cli(context.Background(), nil, args...)
		if r.err == nil || !strings.Contains(r.err.Error(), "built-in applications: greeter") || !strings.Contains(r.err.Error(), "-f") {
			t.Errorf("%s: got %v, want the list of applications and a word on -f module.yaml", strings.Join(args, " "), r.err)
		}
	}
}

// TestBrokerCommand runs `stateloop broker` (a child process) and uses it.
func TestBrokerCommand(t *testing.T) {
	t.Setenv(app.EnvBrokers, "")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &kafkatest.SyncBuffer{}
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		root := newRootCommand()
		root.SetOut(out)
		root.SetErr(out)
		root.SetArgs([]string{"broker", "--listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn"})
		err = root.ExecuteContext(ctx)
	}()
	waitFor(t, out, done, "press Ctrl-C to stop")
	var addr string
	for _, f := range strings.Fields(out.String()) {
		if strings.HasPrefix(f, "127.0.0.1:") {
			addr = f
		}
	}
	if !strings.Contains(out.String(), "(data in "+filepath.Join(dir, "broker")+")") {
		t.Errorf("output %q lacks the data dir", out)
	}
	mustCLI(t, "send", "--brokers", addr, "--topic", "t", "--key", "k", "v")
	if got := mustCLI(t, "consume", "--brokers", addr, "--topic", "t", "-n", "1", "--timeout", "10s"); !strings.HasSuffix(got, " k v\n") {
		t.Errorf("consume: got %q", got)
	}
	cancel()
	<-done
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	if !strings.HasSuffix(out.String(), "broker stopped\n") {
		t.Errorf("output %q does not end with the stop line", out)
	}
}

// TestSendToAnUnknownFunctionTypeFails: regression for issue 10 item 14,
// `send --to` an address of a function type the application does not have
// exited 0, and the application dead-lettered the message. The CLI must
// refuse it, name the types the application has, and write nothing; with
// --new-type (a type of a namespace served as a whole, never invoked, has
// no table yet) it sends anyway.
func TestSendToAnUnknownFunctionTypeFails(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo := runGreeter(t, brokers)
	b := strings.Join(brokers, ",")
	args := []string{"send", "--brokers", b, "--app", "greeter", "--to", "greeter/gret/Alice", "--type", "greeter/name", "Alice"}
	r := cli(context.Background(), nil, args...)
	if r.err == nil {
		t.Fatalf("send to greeter/gret: no error; printed %q", r.out)
	}
	t.Logf("send to greeter/gret: %v", r.err)
	for _, w := range []string{"application greeter has no function type greeter/gret", "its function types: greeter/greet", "--new-type"} {
		if !strings.Contains(r.err.Error(), w) {
			t.Errorf("send to greeter/gret: got %q, want it to say %q", r.err, w)
		}
	}
	client := kafkatest.Client(t, brokers)
	if n := records(t, client, string(topo.LoopTopic())); n != 0 {
		t.Errorf("topic %s has %d records after the refused send, want 0", topo.LoopTopic(), n)
	}

	got := mustCLI(t, append(args, "--new-type")...)
	if want := "sent greeter/name message to greeter/gret/Alice (application greeter, topic greeter-loop)\n"; got != want {
		t.Errorf("send --new-type printed %q, want %q", got, want)
	}
}

// records counts the offsets of a topic's partitions up to their high
// water marks.
func records(t *testing.T, client sarama.Client, topic string) int64 {
	t.Helper()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		n += hwm
	}
	return n
}
