package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// The StateFun 2.x tests run python/server_2x.py, functions written with
// the official Python SDK 2.2.2 as its documentation shows (protobuf
// messages packed into Any, state by context[name], pack_and_send,
// pack_and_reply, pack_and_send_egress with kafka_egress_record,
// send_after), from StateFun 2.x module files (version "2.0").

// ns2 is the namespace of server_2x.py's functions.
const ns2 = "python2"

// greeterModule2 is the StateFun 2.x module of the greeter: the greeter
// and responder of server_2x.py, the names topic as a routable protobuf
// ingress whose records are GreetRequests, and a generic Kafka egress.
const greeterModule2 = `version: "2.0"
module:
  meta:
    type: remote
  spec:
    functions:
      - function:
          meta:
            kind: http
            type: {{ns}}/greeter
          spec:
            endpoint: {{url}}/statefun
            states:
              - name: seen_count
              - name: acks
            maxNumBatchRequests: 500
            timeout: 20s
      - function:
          meta:
            kind: http
            type: {{ns}}/responder
          spec:
            endpoint: {{url}}/statefun
            timeout: 20s
    ingresses:
      - ingress:
          meta:
            type: statefun.kafka.io/routable-protobuf-ingress
            id: {{ns}}/names
          spec:
            address: {{brokers}}
            consumerGroupId: {{app}}
            startupPosition:
              type: earliest
            topics:
              - topic: {{topic}}
                typeUrl: com.googleapis/interop.GreetRequest
                targets:
                  - {{ns}}/greeter
    egresses:
      - egress:
          meta:
            type: statefun.kafka.io/generic-egress
            id: interop/greetings
          spec:
            address: {{brokers}}
            deliverySemantic:
              type: exactly-once
              transactionTimeoutMillis: 900000
`

// fill replaces the {{key}}s of a module template.
func fill(template string, kv ...string) string {
	for i := 0; i < len(kv); i += 2 {
		kv[i] = "{{" + kv[i] + "}}"
	}
	return strings.NewReplacer(kv...).Replace(template)
}

// writeFile writes text to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startPython2 starts server_2x.py with the Python SDK 2.2.2.
func startPython2(t *testing.T, args ...string) *service {
	t.Helper()
	python := installPython2(t)
	server := script(t, "python", "server_2x.py")
	return startService(t, "Python 2.x", []string{"PYTHONUNBUFFERED=1"}, []string{python, server}, args...)
}

// greetRequest encodes interop.GreetRequest: a name such as "Alice", or
// "reset:Alice" for a request that resets Alice's count.
func greetRequest(s string) []byte {
	name, reset := strings.CutPrefix(s, "reset:")
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name)
	if reset {
		b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), 1)
	}
	return b
}

// produceGreetRequests writes each request, keyed by its name.
func produceGreetRequests(t *testing.T, client sarama.Client, topic string, reqs []string) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		key := strings.TrimPrefix(r, "reset:")
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(greetRequest(r))}); err != nil {
			t.Fatalf("produce %s: %v", r, err)
		}
	}
}

// greetings returns the committed records of topic, interop.GreetResponse
// values, as "key: name greeting".
func greetings(t *testing.T, client sarama.Client, topic string) []string {
	t.Helper()
	var out []string
	for _, r := range kafkatest.Records(t, client, topic) {
		var name, greeting string
		b := r.Value
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 || typ != protowire.BytesType {
				t.Fatalf("record %q of %s is not a GreetResponse", r.Value, topic)
			}
			v, m := protowire.ConsumeString(b[n:])
			if m < 0 {
				t.Fatalf("record %q of %s is not a GreetResponse", r.Value, topic)
			}
			b = b[n+m:]
			switch num {
			case 1:
				name = v
			case 2:
				greeting = v
			}
		}
		out = append(out, fmt.Sprintf("%s: %s %s", r.Key, name, greeting))
	}
	return out
}

// waitForGreetings waits until topic holds at least n committed greetings.
func waitForGreetings(t *testing.T, client sarama.Client, topic string, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := greetings(t, client, topic)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Errorf("topic %s: %d committed greetings after %v, want %d: %q", topic, len(got), timeout, n, got)
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// greeterModel computes what server_2x.py's greeter and responder write
// for requests: "Hello <name> #<seen>" for each greeting and "ack #<acks>"
// for each acknowledgement, with upper in capitals when the greetings go
// through NS/upper; and the final state of each name.
type greeterModel struct {
	seen, acks map[string]int
	want       []string
	upper      bool
}

func newGreeterModel(upper bool) *greeterModel {
	return &greeterModel{seen: map[string]int{}, acks: map[string]int{}, upper: upper}
}

func (m *greeterModel) add(reqs []string) {
	for _, r := range reqs {
		if name, ok := strings.CutPrefix(r, "reset:"); ok {
			delete(m.seen, name)
			continue
		}
		m.seen[r]++
		m.acks[r]++
		g := fmt.Sprintf("Hello %s #%d", r, m.seen[r])
		if m.upper {
			g = strings.ToUpper(g)
		}
		m.want = append(m.want, fmt.Sprintf("%s: %s %s", r, r, g), fmt.Sprintf("%s: %s ack #%d", r, r, m.acks[r]))
	}
}

// TestPython2SDKGreeterAsItsDocsShowRunsExactlyOnceAcrossRestartAndKill9
// pins the official Python SDK 2.2.2 behind Flask (RequestReplyHandler)
// from a StateFun 2.x module file: a greeter written as StateFun 2.x's
// documentation shows, with protobuf messages in Any (the ingress wraps
// each record's value in an Any with its typeUrl), state by context[name]
// (set, get and del, the states declared in the module file and sent on
// every call), pack_and_send, pack_and_reply and pack_and_send_egress with
// kafka_egress_record. The application runs three times on one data
// directory: in this process, stopped; in a child process killed with
// SIGKILL while requests are in flight; and again in a child process. The
// counts go on across all three, every greeting and acknowledgement is
// written exactly once, and the state reads, as `stateloop state get`
// shows it, as the type URL and value of the Any the function stored.
func TestPython2SDKGreeterAsItsDocsShowRunsExactlyOnceAcrossRestartAndKill9(t *testing.T) {
	t.Parallel()
	start := time.Now()
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	appName, names, out := "interop-python2", "python2-names", "python2-greetings"
	createTopics(t, client, map[string]int32{names: 4, out: 2})
	// 10 ms per request: the kill finds requests in flight.
	svc := startPython2(t, "--handler", "flask", "--topic", out, "--namespace", ns2, "--delay-ms", "10")
	dir := t.TempDir()
	path := writeFile(t, dir, "module.yaml", fill(greeterModule2, "ns", ns2, "url", svc.URL, "brokers", strings.Join(brokers, ","), "app", appName, "topic", names))
	flags := app.Flags{DataDir: filepath.Join(dir, "data"), Partitions: 4, LogLevel: "warn", ModuleFiles: []string{path}}
	model := newGreeterModel(false)

	// Run 1, in this process, stopped.
	run1 := []string{"Alice", "Bob", "Alice", "Carol", "Alice"}
	out1, runErr, stop := startApp(t, flags)
	waitForOutput(t, out1, runErr, "application "+appName+" ready")
	if !strings.Contains(out1.String(), `a StateFun 2.x module (version "2.0")`) {
		t.Errorf("Run printed no note about the StateFun 2.x module:\n%s", out1)
	}
	produceGreetRequests(t, client, names, run1)
	model.add(run1)
	waitForGreetings(t, client, out, len(model.want), 40*time.Second)
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("run 1: Run: %v\noutput:\n%s", err, out1)
	}
	checkGreetings(t, "run 1", client, out, model.want, appName)
	ran1 := time.Now()

	// Run 2, in a child process, killed while it works.
	var run2 []string
	for i := range 12 {
		for _, n := range []string{"Alice", "Bob", "Carol", "Dave"} {
			if i == 6 && n == "Carol" {
				run2 = append(run2, "reset:Carol")
			}
			run2 = append(run2, n)
		}
	}
	child := startChildApp(t, flags, appName)
	before := len(model.want)
	produceGreetRequests(t, client, names, run2)
	model.add(run2)
	waitForGreetings(t, client, out, before+4, 40*time.Second)
	child.kill9(t)
	killedAt := len(greetings(t, client, out))
	t.Logf("run 2 killed with SIGKILL after %d of %d records", killedAt-before, len(model.want)-before)
	if killedAt >= len(model.want) {
		t.Logf("run 2 had written everything when it was killed: the kill found nothing in flight this time")
	}

	// Run 3, in a child process on the same data directory: the rest.
	child = startChildApp(t, flags, appName)
	waitForGreetings(t, client, out, len(model.want), 60*time.Second)
	child.stop(t)
	checkGreetings(t, "run 3 (after the kill)", client, out, model.want, appName)

	// The state, as `stateloop state get` shows it: the type URL and the
	// value of the Any the function stored.
	seenCount := func(n int) string {
		b := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(n))
		v, _ := json.Marshal(gokaview.DisplayValue{Type: "type.googleapis.com/interop.SeenCount", Value: map[string]any{"base64": b}})
		return string(v)
	}
	for _, name := range []string{"Alice", "Carol"} {
		got := readState(t, brokers, appName, ns2+"/greeter", name)
		want := map[string]string{"seen_count": seenCount(model.seen[name]), "acks": seenCount(model.acks[name])}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("state of %s/greeter/%s (-want +got):\n%s", ns2, name, diff)
		}
	}
	t.Logf("%d requests, %d egress records; run 1 took %v, runs 2 and 3 (with the kill) %v",
		len(run1)+len(run2), len(model.want), ran1.Sub(start).Round(time.Millisecond), time.Since(ran1).Round(time.Millisecond))
}

// checkGreetings checks that topic holds exactly want (as a multiset) and
// that the application wrote no dead letters.
func checkGreetings(t *testing.T, run string, client sarama.Client, topic string, want []string, appName string) {
	t.Helper()
	if diff := cmp.Diff(sorted(want), sorted(greetings(t, client, topic))); diff != "" {
		t.Errorf("%s: records of %s (-want +got):\n%s", run, topic, diff)
	}
	if dlq := kafkatest.ReadCommitted(t, client, appName+"-dlq"); len(dlq) != 0 {
		t.Errorf("%s: %d dead letters, want none", run, len(dlq))
		logDeadLetters(t, client, appName)
	}
}

// readState reads the committed state of an address from its table, as
// `stateloop state get` does, each value as the JSON that command prints.
func readState(t *testing.T, brokers []string, appName string, fn functions.TypeName, id string) map[string]string {
	t.Helper()
	view, err := gokaview.NewView(brokers, topology.Topology{App: appName}, fn, goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatalf("view of %s: %v", fn, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-view.WaitRunning():
	case err := <-done:
		t.Fatalf("view of %s: %v", fn, err)
	}
	v, err := view.Get(id)
	if err != nil {
		t.Fatalf("state of %s/%s: %v", fn, id, err)
	}
	s, _ := v.(gokaview.State)
	out := map[string]string{}
	for name, d := range gokaview.Display(s) {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

// The child process role: this test binary, re-executed with envChildApp
// set to the JSON of app.Flags, runs app.Run with them (and no Go
// functions) until SIGTERM, so that a test can kill it with SIGKILL.
const envChildApp = "STATELOOP_INTEROP_CHILD_APP"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChildApp); spec != "" {
		os.Exit(runChildApp(spec))
	}
	os.Exit(m.Run())
}

func runChildApp(spec string) int {
	var f app.Flags
	if err := json.Unmarshal([]byte(spec), &f); err != nil {
		fmt.Fprintln(os.Stderr, "child app:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	build := func() (topology.Topology, *functions.Registry) { return topology.Topology{}, functions.NewRegistry() }
	if err := app.Run(ctx, f, build, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "child app:", err)
		return 1
	}
	return 0
}

// childApp is app.Run in a child process.
type childApp struct {
	cmd  *exec.Cmd
	out  *kafkatest.SyncBuffer
	done chan error
}

// startChildApp starts app.Run with f in a child process and waits until
// application appName is ready.
func startChildApp(t *testing.T, f app.Flags, appName string) *childApp {
	t.Helper()
	spec, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildApp+"="+string(spec))
	c := &childApp{cmd: cmd, out: &kafkatest.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("output of the application process %d:\n%s", cmd.Process.Pid, c.out)
		}
	})
	deadline := time.After(60 * time.Second)
	for !strings.Contains(c.out.String(), "application "+appName+" ready") {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("the application process exited (%v) before it was ready:\n%s", err, c.out)
		case <-deadline:
			t.Fatalf("the application process was not ready after 60s:\n%s", c.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c
}

// kill9 kills the process with SIGKILL and waits for it.
func (c *childApp) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// stop stops the process with SIGTERM (as Ctrl-C) and waits until it has
// committed and exited.
func (c *childApp) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("the application process ended with %v:\n%s", err, c.out)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the application process did not stop 30s after SIGTERM:\n%s", c.out)
	}
}

// delayedModule2 is the StateFun 2.x module of the delayed-message
// scenario (delayed_test.go) for server_2x.py: its records are the JSON
// requests, which NS/later gets as the value of an Any of type URL
// interop/Later.
const delayedModule2 = `version: "2.0"
module:
  meta:
    type: remote
  spec:
    functions:
      - function:
          meta: {kind: http, type: "{{ns}}/later"}
          spec: {endpoint: "{{url}}/statefun", timeout: 20s}
      - function:
          meta: {kind: http, type: "{{ns}}/arrive"}
          spec: {endpoint: "{{url}}/statefun", timeout: 20s}
    ingresses:
      - ingress:
          meta:
            type: statefun.kafka.io/routable-protobuf-ingress
            id: {{ns}}/later
          spec:
            address: {{brokers}}
            consumerGroupId: {{app}}
            startupPosition:
              type: earliest
            topics:
              - topic: {{ns}}-later
                typeUrl: interop/Later
                targets:
                  - {{ns}}/later
    egresses:
      - egress:
          meta:
            type: statefun.kafka.io/generic-egress
            id: ` + laterEgress + `
          spec:
            address: {{brokers}}
            deliverySemantic:
              type: exactly-once
              transactionTimeoutMillis: 900000
`

// TestPython2SDKDelayedMessagesArriveOnceAndNotEarlyAcrossRestarts pins
// the delayed messages of the official Python SDK 2.2.2 (send_after, no
// cancellation in StateFun 2.x), served by its AsyncRequestReplyHandler in
// aiohttp with async functions: each arrives exactly once, not before the
// sender's clock plus its delay, also when the application restarts while
// they wait.
func TestPython2SDKDelayedMessagesArriveOnceAndNotEarlyAcrossRestarts(t *testing.T) {
	t.Parallel()
	runDelayedScenario(t, delayedSDK{
		name: "Python 2.x", ns: ns2, module: delayedModule2, noCancellation: true,
		// send_after sends int(delay.total_seconds() * 1000), as 3.x does.
		truncation: time.Millisecond,
		serve: func(t *testing.T, topic string) string {
			return startPython2(t, "--handler", "aiohttp", "--topic", topic, "--namespace", ns2, "--egress", laterEgress).URL
		},
	})
}

// TestPython2And3SDKFunctionsMessageEachOther runs a StateFun 2.x module
// file and a StateFun 3.x one as one application (two -f files): the
// greeter of the Python SDK 2.2.2 (aiohttp, async functions) sends each
// greeting, a protobuf GreetResponse packed into an Any, to NS/upper of
// the Python SDK 3.3, which reads it as the protobuf type of the same name
// (type.googleapis.com/interop.GreetResponse) and answers its caller with
// a GreetResponse in capitals, which the 2.x function unpacks and writes
// to Kafka. Every greeting and acknowledgement arrives exactly once.
func TestPython2And3SDKFunctionsMessageEachOther(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	appName, names, out := "interop-python2and3", "mixed-names", "mixed-greetings"
	createTopics(t, client, map[string]int32{names: 4, out: 2})
	svc2 := startPython2(t, "--handler", "aiohttp", "--topic", out, "--namespace", ns2, "--upper", "python/upper")
	python := installPython(t)
	svc3 := startService(t, "Python", []string{"PYTHONUNBUFFERED=1"}, []string{python, script(t, "python", "server.py")},
		"--topic", out, "--namespace", "python")
	dir := t.TempDir()
	old := writeFile(t, dir, "old.yaml", fill(greeterModule2, "ns", ns2, "url", svc2.URL, "brokers", strings.Join(brokers, ","), "app", appName, "topic", names))
	modern := writeFile(t, dir, "new.yaml", fill(`kind: io.statefun.endpoints.v2/http
spec:
  functions: python/*
  urlPathTemplate: {{url}}/{function.name}
  transport:
    call: 20s
`, "url", svc3.URL))
	flags := app.Flags{DataDir: filepath.Join(dir, "data"), Partitions: 4, LogLevel: "warn", ModuleFiles: []string{old, modern}}
	model := newGreeterModel(true)
	reqs := []string{"Alice", "Bob", "Alice", "Carol", "Alice", "Bob"}
	outBuf, runErr, stop := startApp(t, flags)
	waitForOutput(t, outBuf, runErr, "application "+appName+" ready")
	produceGreetRequests(t, client, names, reqs)
	model.add(reqs)
	waitForGreetings(t, client, out, len(model.want), 40*time.Second)
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, outBuf)
	}
	checkGreetings(t, "run", client, out, model.want, appName)
	st, err := svc3.stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests["upper"] == 0 {
		t.Errorf("python/upper (SDK 3.3) got no requests: %v", st.Requests)
	}
}

// TestProtocolVersionMismatchIsADeadLetterThatSaysSo: functions declared
// in the other version's module format than their SDK speaks do not get
// empty messages silently: the invocation fails and the record goes to the
// dead-letter topic with a reason that names the likely mismatch. Here the
// Python SDK 2.2.2 is declared by a StateFun 3.x file (its NS/arrive writes
// a 2.x egress record; its NS/greeter, without its state, answers HTTP 500
// until the call timeout), and the Python SDK 3.3 by a StateFun 2.x file
// (its NS/greeter asks for its state in 3.x's way).
func TestProtocolVersionMismatchIsADeadLetterThatSaysSo(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	appName := "interop-mismatch"
	createTopics(t, client, map[string]int32{"to-2x": 2, "to-3x": 2, "mismatch-out": 1})
	svc2 := startPython2(t, "--handler", "flask", "--topic", "mismatch-out", "--namespace", ns2)
	python := installPython(t)
	svc3 := startService(t, "Python", []string{"PYTHONUNBUFFERED=1"}, []string{python, script(t, "python", "server.py")},
		"--topic", "mismatch-out", "--namespace", "python")
	dir := t.TempDir()
	// The 2.x SDK behind a 3.x endpoint.
	wrong3 := writeFile(t, dir, "wrong3.yaml", fill(`kind: io.statefun.endpoints.v2/http
spec:
  functions: {{ns}}/*
  urlPathTemplate: {{url}}/statefun
  transport:
    call: 3s
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: mismatch/to-2x
  consumerGroupId: interop-mismatch
  topics:
    - topic: to-2x
      valueType: type.googleapis.com/interop.GreetRequest
      targets: [{{ns}}/arrive, {{ns}}/greeter]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: interop/greetings
`, "ns", ns2, "url", svc2.URL))
	// The 3.x SDK declared as a 2.x function.
	wrong2 := writeFile(t, dir, "wrong2.yaml", fill(`version: "2.0"
module:
  meta: {type: remote}
  spec:
    functions:
      - function:
          meta: {kind: http, type: python/greeter}
          spec: {endpoint: "{{url}}/greeter"}
    ingresses:
      - ingress:
          meta: {type: statefun.kafka.io/routable-protobuf-ingress, id: mismatch/to-3x}
          spec:
            consumerGroupId: interop-mismatch
            topics:
              - topic: to-3x
                typeUrl: io.statefun.types/string
                targets: [python/greeter]
`, "url", svc3.URL))
	flags := app.Flags{Brokers: brokers, DataDir: filepath.Join(dir, "data"), Partitions: 2, LogLevel: "error", ModuleFiles: []string{wrong3, wrong2}}
	outBuf, runErr, stop := startApp(t, flags)
	waitForOutput(t, outBuf, runErr, "application "+appName+" ready")
	produceGreetRequests(t, client, "to-2x", []string{"Alice"})
	produceGreetRequests(t, client, "to-3x", []string{"Bob"})

	want := map[string][]string{
		ns2 + "/arrive": {"answered in the StateFun 2.x protocol", "is a protobuf Any of type \"type.googleapis.com/" + "org.apache.flink.statefun.flink.io.KafkaProducerRecord\"",
			`declare it in a StateFun 2.x module file (version: "2.0"`},
		ns2 + "/greeter": {"HTTP 500", "no call of this function type has succeeded yet: if it runs a StateFun 2.x SDK", `version: "2.0"`},
		"python/greeter": {"answered in the StateFun 3.x protocol", "IncompleteInvocationContext", "kind io.statefun.endpoints.v2/http"},
	}
	deadline := time.Now().Add(40 * time.Second)
	var got map[string]string
	for time.Now().Before(deadline) {
		if got = deadLetters(t, client, appName); len(got) >= len(want) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, outBuf)
	}
	for fn, phrases := range want {
		reason, ok := got[fn]
		if !ok {
			t.Errorf("no dead letter for %s; dead letters: %q", fn, got)
			continue
		}
		t.Logf("dead letter of %s: %s", fn, reason)
		for _, p := range phrases {
			if !strings.Contains(reason, p) {
				t.Errorf("dead letter of %s: reason %q does not say %q", fn, reason, p)
			}
		}
	}
	if recs := kafkatest.ReadCommitted(t, client, "mismatch-out"); len(recs) != 0 {
		t.Errorf("%d egress records of garbled invocations, want none: %q", len(recs), recs)
	}
}

// deadLetters returns the reason of each dead letter of the application by
// function type.
func deadLetters(t *testing.T, client sarama.Client, appName string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := client.RefreshMetadata(appName + "-dlq"); err != nil {
		return out // not created yet
	}
	for _, r := range kafkatest.Records(t, client, appName+"-dlq") {
		out[r.Headers["stateloop.function.type"]] = r.Headers["stateloop.error"]
	}
	return out
}

// TestStateOfAStateFun2FunctionCarriesOverToStateFun3: moving a function
// from the Python SDK 2.2.2 to 3.3 keeps its state. NS/counter runs with
// the SDK 2.x from a StateFun 2.x module first, storing seen_count as a
// SeenCount packed into an Any; then, on the same data directory, with the
// SDK 3.3 from a kind/spec module, declaring seen_count with the protobuf
// type SeenCount (type.googleapis.com/interop.SeenCount, the type URL
// that Any.Pack gave it). The counts go on.
func TestStateOfAStateFun2FunctionCarriesOverToStateFun3(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	const ns, appName, names, out = "migrate", "interop-migrate", "migrate-names", "migrate-counts"
	createTopics(t, client, map[string]int32{names: 2, out: 1})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := strings.Join(brokers, ",")

	svc2 := startPython2(t, "--handler", "flask", "--topic", out, "--namespace", ns, "--egress", "interop/counts")
	v2 := writeFile(t, dir, "v2.yaml", fill(`version: "2.0"
module:
  meta: {type: remote}
  spec:
    functions:
      - function:
          meta: {kind: http, type: "{{ns}}/counter"}
          spec: {endpoint: "{{url}}/statefun", states: [{name: seen_count}]}
    ingresses:
      - ingress:
          meta: {type: statefun.kafka.io/routable-protobuf-ingress, id: "{{ns}}/names"}
          spec:
            address: {{brokers}}
            consumerGroupId: {{app}}
            topics:
              - {topic: {{topic}}, typeUrl: type.googleapis.com/interop.GreetRequest, targets: ["{{ns}}/counter"]}
    egresses:
      - egress:
          meta: {type: statefun.kafka.io/generic-egress, id: interop/counts}
          spec: {address: {{brokers}}}
`, "ns", ns, "url", svc2.URL, "brokers", addr, "app", appName, "topic", names))
	python := installPython(t)
	svc3 := startService(t, "Python", []string{"PYTHONUNBUFFERED=1"}, []string{python, script(t, "python", "server.py")},
		"--topic", out, "--namespace", ns, "--egress", "interop/counts")
	v3 := writeFile(t, dir, "v3.yaml", fill(`kind: io.statefun.endpoints.v2/http
spec:
  functions: "{{ns}}/*"
  urlPathTemplate: "{{url}}/{function.name}"
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: "{{ns}}/names"
  address: {{brokers}}
  consumerGroupId: {{app}}
  topics:
    - {topic: {{topic}}, valueType: type.googleapis.com/interop.GreetRequest, targets: ["{{ns}}/counter"]}
---
kind: io.statefun.kafka.v1/egress
spec: {id: interop/counts, address: {{brokers}}}
`, "ns", ns, "url", svc3.URL, "brokers", addr, "app", appName, "topic", names))

	var want []string
	for _, run := range []struct {
		file, sdk string
		names     []string
		counts    []int
	}{
		{v2, "2.x", []string{"Alice", "Bob", "Alice"}, []int{1, 1, 2}},
		{v3, "3.x", []string{"Alice", "Bob"}, []int{3, 2}},
	} {
		flags := app.Flags{DataDir: data, Partitions: 2, LogLevel: "warn", ModuleFiles: []string{run.file}}
		outBuf, runErr, stop := startApp(t, flags)
		waitForOutput(t, outBuf, runErr, "application "+appName+" ready")
		produceGreetRequests(t, client, names, run.names)
		for i, n := range run.names {
			want = append(want, fmt.Sprintf("%s: %s seen %d by %s", n, n, run.counts[i], run.sdk))
		}
		waitForRecords(t, client, out, len(want))
		stop()
		if err := <-runErr; err != nil {
			t.Fatalf("%s: Run: %v\noutput:\n%s", run.file, err, outBuf)
		}
		if diff := cmp.Diff(sorted(want), sorted(readRecords(t, client, out))); diff != "" {
			t.Fatalf("after the StateFun %s run: records of %s (-want +got):\n%s", run.sdk, out, diff)
		}
	}
	if dlq := kafkatest.ReadCommitted(t, client, appName+"-dlq"); len(dlq) != 0 {
		t.Errorf("%d dead letters, want none", len(dlq))
		logDeadLetters(t, client, appName)
	}
}
