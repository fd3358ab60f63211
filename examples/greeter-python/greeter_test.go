package greeterpython_test

// The README's run without Docker, for real: greeter.py from a virtualenv
// with the pinned SDK, and stateloop (app.Run, as `stateloop run -f` runs
// it) with this directory's module files, against an in-process Kafka
// broker. Nothing is skipped: without python3 the test fails and says what
// to install.

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
	"github.com/stateloop/stateloop/internal/sdkcache"
	"github.com/stateloop/stateloop/topology"
	"github.com/stateloop/stateloop/topology/module"
)

const (
	appName        = "greeter-python" // the consumerGroupId of the module files
	namesTopic     = "names"
	greetingsTopic = "greetings"
)

// greeting is greeter.py's greeting of a name on its visits-th visit.
func greeting(name string, visits int) string {
	return fmt.Sprintf("Hello %s, this is visit %d (greeted by Python)", name, visits)
}

// TestGreeterPython runs each module file with greeter.py: the names of two
// runs of the application on one data directory, the second with the
// counts going on from the first, every greeting exactly once.
func TestGreeterPython(t *testing.T) {
	// A virtualenv with requirements.txt, made once per machine in the
	// cache of the interop tests, and greeter.py on a free port.
	python := sdkcache.Python(t, "StateFun Python SDK (greeter-python)", "requirements.txt", "greeter-py-", "import statefun, aiohttp")
	svc := sdkcache.Serve(t, "greeter.py", nil, []string{python, "greeter.py"}, "/health", "--stop-on-stdin-eof")

	for _, tc := range []struct {
		name string
		file string
		// hosts maps what the file names to the test's addresses; "" is
		// replaced by the broker's address.
		hosts map[string]string
		// brokers: pass the broker as --brokers (the file names none).
		brokers bool
	}{
		{
			// README: `go run ./cmd/stateloop run -f examples/greeter-python/module-local.yaml`
			name:    "module-local.yaml",
			file:    "module-local.yaml",
			hosts:   map[string]string{"http://127.0.0.1:8000/": svc.URL + "/"},
			brokers: true,
		},
		{
			// docker-compose.yml: the same module with the compose hosts;
			// Run takes the Kafka address from the file.
			name:  "module.yaml",
			file:  "module.yaml",
			hosts: map[string]string{"http://greeter-python:8000/": svc.URL + "/", "kafka:9092": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			brokers := kafkatest.StartKfake(t)
			client := newClient(t, brokers)

			src, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			text := string(src)
			for from, to := range tc.hosts {
				if to == "" {
					to = strings.Join(brokers, ",")
				}
				if !strings.Contains(text, from) {
					t.Fatalf("%s does not name %s", tc.file, from)
				}
				text = strings.ReplaceAll(text, from, to)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			flags := app.Flags{DataDir: filepath.Join(dir, "data"), LogLevel: "warn", ModuleFiles: []string{path}}
			if tc.brokers {
				flags.Brokers = brokers
			}

			want := map[string][]string{}
			for run, names := range [][]string{{"Alice", "Bob", "Alice"}, {"Alice", "Carol", "Bob"}} {
				out, runErr, stop := startApp(t, flags)
				waitForOutput(t, out, runErr, "application "+appName+" ready")
				if !tc.brokers && !strings.Contains(out.String(), "using the Kafka address that "+path+" names: "+strings.Join(brokers, ",")) {
					t.Errorf("run %d: Run did not take the Kafka address from the file; output:\n%s", run+1, out)
				}
				produce(t, client, names)
				n := 0
				for _, name := range names {
					want[name] = append(want[name], greeting(name, len(want[name])+1))
				}
				for _, g := range want {
					n += len(g)
				}
				waitForRecords(t, client, n)
				stop()
				if err := <-runErr; err != nil {
					t.Fatalf("run %d: Run: %v\noutput:\n%s", run+1, err, out)
				}
				// Everything is committed now: each name's greetings, in
				// order, each once.
				if diff := cmp.Diff(want, readGreetings(t, client)); diff != "" {
					t.Errorf("run %d: greetings by name (-want +got):\n%s", run+1, diff)
				}
				if t.Failed() {
					t.Logf("run %d: output of Run:\n%s", run+1, out)
					return
				}
			}
			if dlq := kafkatest.ReadCommitted(t, client, appName+"-dlq"); len(dlq) != 0 {
				t.Errorf("%d dead letters, want none: %q", len(dlq), dlq)
			}
		})
	}
}

// TestModuleFilesAgree: module-local.yaml is module.yaml with other hosts.
func TestModuleFilesAgree(t *testing.T) {
	compose, err := module.ParseFile("module.yaml")
	if err != nil {
		t.Fatal(err)
	}
	local, err := module.ParseFile("module-local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*module.Module{compose, local} {
		if len(m.Warnings) > 0 {
			t.Errorf("%s: warnings %v", m.File, m.Warnings)
		}
		if u := m.UnboundTargets(); len(u) > 0 {
			t.Errorf("%s: targets %v are served by no endpoint", m.File, u)
		}
	}
	if diff := cmp.Diff(compose.Topology(appName), local.Topology(appName)); diff != "" {
		t.Errorf("the topologies of module.yaml and module-local.yaml differ (-module.yaml +module-local.yaml):\n%s", diff)
	}
	want := topology.Topology{
		App:       appName,
		Functions: []functions.TypeName{"greeter.fns/greet"},
		Ingresses: []topology.Ingress{{Topic: namesTopic, ValueType: "greeter.types/name", Targets: []functions.TypeName{"greeter.fns/greet"}}},
		Egresses:  []topology.Egress{{ID: "greeter.io/greetings"}},
	}
	if diff := cmp.Diff(want, compose.Topology(appName)); diff != "" {
		t.Errorf("module.yaml (-want +got):\n%s", diff)
	}
	for _, m := range []*module.Module{compose, local} {
		if len(m.Ingresses) != 1 || m.Ingresses[0].ConsumerGroupID != appName {
			t.Errorf("%s: want one ingress with consumerGroupId %s", m.File, appName)
		}
	}
	urls := map[string]string{}
	for _, m := range []*module.Module{compose, local} {
		e, ok := m.EndpointFor("greeter.fns/greet")
		if !ok {
			t.Fatalf("%s: no endpoint for greeter.fns/greet", m.File)
		}
		urls[m.File] = e.URLFor("greeter.fns/greet")
	}
	if diff := cmp.Diff(map[string]string{
		"module.yaml":       "http://greeter-python:8000/statefun",
		"module-local.yaml": "http://127.0.0.1:8000/statefun",
	}, urls); diff != "" {
		t.Errorf("endpoint URLs (-want +got):\n%s", diff)
	}
	for _, in := range compose.Ingresses {
		if !slices.Equal(in.Address, []string{"kafka:9092"}) {
			t.Errorf("module.yaml: ingress %s address %q, want kafka:9092", in.ID, in.Address)
		}
	}
	for _, e := range compose.Egresses {
		if !slices.Equal(e.Address, []string{"kafka:9092"}) {
			t.Errorf("module.yaml: egress %s address %q, want kafka:9092", e.ID, e.Address)
		}
	}
	// No address: stateloop uses the embedded broker, or --brokers.
	for _, in := range local.Ingresses {
		if len(in.Address) > 0 {
			t.Errorf("module-local.yaml: ingress %s names Kafka at %q; without an address stateloop starts its embedded broker", in.ID, in.Address)
		}
	}
	for _, e := range local.Egresses {
		if len(e.Address) > 0 {
			t.Errorf("module-local.yaml: egress %s names Kafka at %q; without an address stateloop starts its embedded broker", e.ID, e.Address)
		}
	}
}

// TestRequirementsMatchInterop: the example pins what the interop tests
// test, package for package.
func TestRequirementsMatchInterop(t *testing.T) {
	if diff := cmp.Diff(sdkcache.RequirementPins(t, "../../internal/interop/python/requirements.txt"), sdkcache.RequirementPins(t, "requirements.txt")); diff != "" {
		t.Errorf("requirements.txt differs from internal/interop/python/requirements.txt (-interop +example):\n%s", diff)
	}
}

// ---------------------------------------------------------------------------
// stateloop and Kafka

// startApp runs app.Run with the module's application alone in the
// background (apptest.Start).
func startApp(t *testing.T, f app.Flags) (*kafkatest.SyncBuffer, <-chan error, func()) {
	t.Helper()
	build := func() (topology.Topology, *functions.Registry) { return topology.Topology{}, functions.NewRegistry() }
	r := apptest.Start(t, f, build)
	return r.Out, r.Err, r.Stop
}

// waitForOutput waits until Run prints want.
func waitForOutput(t *testing.T, out *kafkatest.SyncBuffer, runErr <-chan error, want string) {
	t.Helper()
	(&apptest.Run{Out: out, Err: runErr}).WaitFor(t, want, 60*time.Second)
}

// newClient returns a sarama client that does not create topics by asking
// for them: the application's egress must create greetings itself, as it
// does on Apache Kafka (auto.create.topics.enable).
func newClient(t *testing.T, brokers []string) sarama.Client {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Metadata.AllowAutoTopicCreation = false
	c, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// produce writes each name to the names topic as `stateloop send --topic
// names --key NAME NAME` does: key and value the name, as UTF-8 text.
func produce(t *testing.T, client sarama.Client, names []string) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: namesTopic, Key: sarama.StringEncoder(n), Value: sarama.StringEncoder(n)}); err != nil {
			t.Fatalf("produce %s: %v", n, err)
		}
	}
}

// greetings returns the committed greetings by key, in offset order, and
// whether the topic exists.
func greetings(t *testing.T, client sarama.Client) (map[string][]string, bool) {
	t.Helper()
	err := client.RefreshMetadata(greetingsTopic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("metadata %s: %v", greetingsTopic, err)
	}
	parts, err := client.Partitions(greetingsTopic)
	if err != nil {
		t.Fatalf("partitions %s: %v", greetingsTopic, err)
	}
	out := map[string][]string{}
	for _, p := range parts {
		start, _, lso, err := kafkaread.Ends(client, greetingsTopic, p)
		if err != nil {
			t.Fatalf("ends %s/%d: %v", greetingsTopic, p, err)
		}
		_, err = kafkaread.ReadCommitted(context.Background(), client, greetingsTopic, p, start, lso, func(r kafkaread.Record) error {
			out[string(r.Key)] = append(out[string(r.Key)], string(r.Value))
			return nil
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", greetingsTopic, p, err)
		}
	}
	return out, true
}

// readGreetings returns the committed greetings by key; the topic must
// exist.
func readGreetings(t *testing.T, client sarama.Client) map[string][]string {
	t.Helper()
	g, ok := greetings(t, client)
	if !ok {
		t.Fatalf("topic %s does not exist", greetingsTopic)
	}
	return g
}

// waitForRecords waits until a read_committed reader sees at least n
// greetings.
func waitForRecords(t *testing.T, client sarama.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		g, _ := greetings(t, client)
		got = 0
		for _, v := range g {
			got += len(v)
		}
		if got >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("topic %s: %d committed greetings after 60s, want %d", greetingsTopic, got, n)
}
