package interop_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// The scenario every SDK runs. Its functions (python/server.py,
// js/server.js) form a cycle remote → remote → embedded Go → remote:
//
//	<ns>-names topic → <ns>/greeter (int state "seen")
//	  → <ns>/relay (checks that its caller is the greeter)
//	  → local/shout (Go, registered by the test: capitals, and back to the caller's namespace)
//	  → <ns>/echo (a counter of its own) → Kafka egress interop/greetings, topic <ns>-greetings
//
// so the k-th greeting of Alice is the record "HELLO ALICE #k (echo k from
// local/shout)" with key Alice. It runs the application twice on one data directory,
// each time with a freshly started function service: the second time the
// service answers HTTP 500 to the first failFirst requests of each
// function after running it, and the counts go on from the first run.

// failFirst is how many requests of each remote function the service
// fails in the second run.
const failFirst = 3

// Names produced in each run, as Kafka record keys and string values.
var (
	namesRun1 = []string{"Alice", "Bob", "Alice", "Carol", "Alice"}
	namesRun2 = []string{"Alice", "Bob", "Dave", "Bob"}
)

// sdkUnderTest starts one SDK's function service.
type sdkUnderTest struct {
	name string // for messages: "Python", "JavaScript"
	ns   string // the functions' namespace
	// start starts the service with the extra arguments.
	start func(t *testing.T, args ...string) *service
}

// TestPythonSDKRunsACycleThroughGoExactlyOnceAcrossRestartsAndHTTP500s pins
// the official Python SDK (apache-flink-statefun 3.3.0, aiohttp) as a
// remote function service: messages between its functions and a Go
// function, its int and long state across a restart of the application
// and of the service, its Kafka egress records (kafka_egress_message), and
// HTTP 500 answers retried with every effect applied exactly once.
func TestPythonSDKRunsACycleThroughGoExactlyOnceAcrossRestartsAndHTTP500s(t *testing.T) {
	t.Parallel()
	python := installPython(t)
	server := script(t, "python", "server.py")
	runScenario(t, sdkUnderTest{name: "Python", ns: "python", start: func(t *testing.T, args ...string) *service {
		return startService(t, "Python", []string{"PYTHONUNBUFFERED=1"}, []string{python, server}, args...)
	}})
}

// TestJavaScriptSDKRunsACycleThroughGoExactlyOnceAcrossRestartsAndHTTP500s
// pins the official JavaScript SDK (apache-flink-statefun 3.3.0 on npm,
// Node's http module) the same way: messages with a Go function, its int
// and JSON state across restarts, its Kafka egress records
// (kafkaEgressMessage), and HTTP 500 answers retried exactly once.
func TestJavaScriptSDKRunsACycleThroughGoExactlyOnceAcrossRestartsAndHTTP500s(t *testing.T) {
	t.Parallel()
	node, modules := installJavaScript(t)
	server := script(t, "js", "server.js")
	runScenario(t, sdkUnderTest{name: "JavaScript", ns: "js", start: func(t *testing.T, args ...string) *service {
		return startService(t, "JavaScript", []string{"NODE_PATH=" + modules}, []string{node, server}, args...)
	}})
}

// script returns the absolute path of a service's script. It reads the
// file so that go test's cache of passed tests notices a change to it.
func script(t *testing.T, elem ...string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join(elem...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// moduleYAML is the application's module.yaml: the SDK's functions behind
// one endpoint, the names topic as an ingress, and a Kafka egress. The
// Kafka address is the test broker's, so Run uses it without --brokers.
const moduleYAML = `kind: io.statefun.endpoints.v2/http
spec:
  functions: {{ns}}/*
  urlPathTemplate: {{url}}/{function.name}
  transport:
    type: io.statefun.transports.v1/async
    call: 20s
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: {{ns}}/names
  address: {{brokers}}
  consumerGroupId: {{app}}
  startupPosition:
    type: earliest
  topics:
    - topic: {{ns}}-names
      valueType: io.statefun.types/string
      targets:
        - {{ns}}/greeter
---
kind: io.statefun.kafka.v1/egress
spec:
  id: interop/greetings
  address: {{brokers}}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
`

func runScenario(t *testing.T, sdk sdkUnderTest) {
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	appName := "interop-" + sdk.ns
	names, greetings := sdk.ns+"-names", sdk.ns+"-greetings"
	createTopics(t, client, map[string]int32{names: 4, greetings: 2})

	dir := t.TempDir()
	modulePath := filepath.Join(dir, "module.yaml")
	writeModule := func(url string) {
		yaml := strings.NewReplacer("{{ns}}", sdk.ns, "{{url}}", url, "{{brokers}}", strings.Join(brokers, ","), "{{app}}", appName).Replace(moduleYAML)
		if err := os.WriteFile(modulePath, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flags := app.Flags{DataDir: filepath.Join(dir, "data"), Partitions: 4, LogLevel: "warn", ModuleFiles: []string{modulePath}}
	seen := map[string]int{}
	var want []string
	expect := func(names []string) {
		for _, n := range names {
			seen[n]++
			want = append(want, fmt.Sprintf("%s: %s #%d (echo %d from local/shout)", n, strings.ToUpper("Hello "+n), seen[n], seen[n]))
		}
	}

	for run, batch := range [][]string{namesRun1, namesRun2} {
		run++
		args := []string{"--topic", greetings, "--namespace", sdk.ns, "--egress", "interop/greetings"}
		if run == 2 {
			args = append(args, "--fail-first", fmt.Sprint(failFirst))
		}
		svc := sdk.start(t, args...)
		writeModule(svc.URL)

		out, runErr, stop := startApp(t, flags)
		waitForOutput(t, out, runErr, "application "+appName+" ready")
		produce(t, client, names, batch)
		expect(batch)
		waitForRecords(t, client, greetings, len(want))
		stop()
		if err := <-runErr; err != nil {
			t.Fatalf("run %d: Run: %v\noutput:\n%s", run, err, out)
		}
		// Everything is committed now: the topic holds exactly the
		// greetings so far, each once.
		got := readRecords(t, client, greetings)
		if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
			t.Errorf("run %d: greetings on %s (-want +got):\n%s", run, greetings, diff)
			logDeadLetters(t, client, appName)
		}
		st, err := svc.stats()
		if err != nil {
			t.Fatalf("run %d: stats of the %s service: %v", run, sdk.name, err)
		}
		svc.stop()
		t.Logf("run %d: %s service requests %v, injected failures %v", run, sdk.name, st.Requests, st.Failures)
		if run == 2 {
			// Every remote function of the cycle was answered 500 and
			// retried; the exact greetings above show that no effect
			// was lost or doubled.
			for _, fn := range []string{"greeter", "relay", "echo"} {
				if st.Failures[fn] != failFirst {
					t.Errorf("run 2: %s/%s got %d injected HTTP 500s, want %d", sdk.ns, fn, st.Failures[fn], failFirst)
				}
				if st.Requests[fn] <= failFirst {
					t.Errorf("run 2: %s/%s got %d requests, want more than the %d failed ones (retries)", sdk.ns, fn, st.Requests[fn], failFirst)
				}
			}
		}
		if t.Failed() {
			return
		}
	}
	if dlq := kafkatest.ReadCommitted(t, client, appName+"-dlq"); len(dlq) != 0 {
		t.Errorf("%d dead letters, want none", len(dlq))
		logDeadLetters(t, client, appName)
	}
}

// shoutApp is the Go side of the application: local/shout puts the text
// in capitals and sends it to <caller's namespace>/echo, so one build
// serves every SDK's cycle.
func shoutApp() (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: "local/shout",
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			caller, ok := ctx.Caller()
			if !ok {
				return functions.Permanent(errors.New("interop: local/shout: a message without a caller; want one from <ns>/relay"))
			}
			to := functions.Address{Type: functions.TypeName(caller.Type.Namespace() + "/echo"), ID: ctx.Self().ID}
			ctx.Send(to, functions.StringType.Of(strings.ToUpper(s)))
			return nil
		})),
	})
	return topology.Topology{Functions: []functions.TypeName{"local/shout"}}, reg
}

// startApp runs app.Run with shoutApp in the background (apptest.Start).
func startApp(t *testing.T, f app.Flags) (*kafkatest.SyncBuffer, <-chan error, func()) {
	t.Helper()
	r := apptest.Start(t, f, shoutApp)
	return r.Out, r.Err, r.Stop
}

// waitForOutput waits until Run prints want.
func waitForOutput(t *testing.T, out *kafkatest.SyncBuffer, runErr <-chan error, want string) {
	t.Helper()
	(&apptest.Run{Out: out, Err: runErr}).WaitFor(t, want, 30*time.Second)
}

// readRecords returns every committed record of topic as "key: value".
func readRecords(t *testing.T, client sarama.Client, topic string) []string {
	t.Helper()
	var out []string
	for _, r := range kafkatest.Records(t, client, topic) {
		out = append(out, fmt.Sprintf("%s: %s", r.Key, r.Value))
	}
	return out
}

// waitForRecords waits until a read_committed reader sees at least n
// records on topic.
func waitForRecords(t *testing.T, client sarama.Client, topic string, n int) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got = kafkatest.ReadCommitted(t, client, topic); len(got) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("topic %s: %d committed records after 40s, want %d; got %q", topic, len(got), n, got)
}

func createTopics(t *testing.T, client sarama.Client, topics map[string]int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for name, parts := range topics {
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
}

// produce writes each name as a record keyed by it, its value a StateFun
// string (io.statefun.types/string), as the ingress declares.
func produce(t *testing.T, client sarama.Client, topic string, names []string) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		v, err := functions.StringType.Codec().Encode(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(n), Value: sarama.ByteEncoder(v)}); err != nil {
			t.Fatalf("produce %s: %v", n, err)
		}
	}
}

// logDeadLetters logs the dead letters of the application with their
// reasons, to explain a missing greeting.
func logDeadLetters(t *testing.T, client sarama.Client, appName string) {
	t.Helper()
	topic := appName + "-dlq"
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Logf("dead letters: %v", err)
		return
	}
	for _, p := range parts {
		start, _, lso, err := kafkaread.Ends(client, topic, p)
		if err != nil {
			t.Logf("dead letters: %v", err)
			return
		}
		_, _ = kafkaread.ReadCommitted(context.Background(), client, topic, p, start, lso, func(r kafkaread.Record) error {
			var hs []string
			for _, h := range r.Headers {
				hs = append(hs, fmt.Sprintf("%s=%s", h.Key, h.Value))
			}
			t.Logf("dead letter %s/%d@%d key %q: %s", topic, p, r.Offset, r.Key, strings.Join(hs, " "))
			return nil
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
