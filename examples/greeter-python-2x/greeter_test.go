package greeterpython2x_test

// The README's run, for real: greeter.py from a virtualenv with the
// pinned StateFun Python SDK 2.2.2, names written with request.py, and
// stateloop (app.Run, as `stateloop run -f` runs it) with module.yaml
// against an in-process Kafka broker. Nothing is skipped: without python3
// the test fails and says what to install.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/sdkcache"
	"github.com/stateloop/stateloop/topology"
	"github.com/stateloop/stateloop/topology/module"
)

const appName = "greeter-python-2x" // the consumerGroupId of module.yaml

// greeting is greeter.py's greeting of a name on its seen-th visit.
func greeting(name string, seen int) string {
	templates := []string{"", "Welcome %s", "Nice to see you again %s", "Third time is a charm %s"}
	if seen < len(templates) {
		return fmt.Sprintf(templates[seen], name)
	}
	return fmt.Sprintf("Nice to see you at the %d-nth time %s!", seen, name)
}

// TestGreeterPython2x runs module.yaml with greeter.py: the names of two
// runs of the application on one data directory, the second with the
// counts going on from the first, every greeting exactly once and in order.
func TestGreeterPython2x(t *testing.T) {
	python := sdkcache.Python(t, "StateFun Python SDK 2.2 (greeter-python-2x)", "requirements.txt", "greeter2x-py-", "import statefun, flask")
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	svc := sdkcache.Serve(t, "greeter.py", []string{"PYTHONUNBUFFERED=1"}, []string{python, filepath.Join(dir, "greeter.py")}, "/health", "--stop-on-stdin-eof")
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)

	src, err := os.ReadFile("module.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const local = "http://127.0.0.1:8000/"
	if !strings.Contains(string(src), local) {
		t.Fatalf("module.yaml does not name %s", local)
	}
	tmp := t.TempDir()
	path := filepath.Join(tmp, "module.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(src), local, svc.URL+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	// README: go run ./cmd/stateloop run -f examples/greeter-python-2x/module.yaml (--brokers here)
	flags := app.Flags{Brokers: brokers, DataDir: filepath.Join(tmp, "data"), LogLevel: "warn", ModuleFiles: []string{path}}
	build := func() (topology.Topology, *functions.Registry) { return topology.Topology{}, functions.NewRegistry() }

	want := map[string][]string{}
	total := 0
	for run, names := range [][]string{{"Alice", "Bob", "Alice"}, {"Alice", "Carol", "Bob", "Alice", "Alice"}} {
		r := apptest.Start(t, flags, build)
		r.WaitFor(t, "application "+appName+" ready", 30*time.Second)
		sp, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			// README: python request.py Alice | stateloop send --topic names --key Alice --value-file -
			req, err := exec.Command(python, filepath.Join(dir, "request.py"), name).Output()
			if err != nil {
				t.Fatalf("request.py %s: %v", name, err)
			}
			if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "names", Key: sarama.StringEncoder(name), Value: sarama.ByteEncoder(req)}); err != nil {
				t.Fatal(err)
			}
			want[name] = append(want[name], greeting(name, len(want[name])+1))
			total++
		}
		sp.Close()
		deadline := time.Now().Add(40 * time.Second)
		for len(kafkatest.ReadCommitted(t, client, "greetings")) < total && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		r.Stop()
		if err := <-r.Err; err != nil {
			t.Fatalf("run %d: Run: %v\noutput:\n%s", run+1, err, r.Out)
		}
		// Everything is committed now: each name's greetings, in order,
		// each once.
		if diff := cmp.Diff(want, readGreetings(t, client)); diff != "" {
			t.Fatalf("run %d: greetings by name (-want +got):\n%s\noutput of Run:\n%s", run+1, diff, r.Out)
		}
	}
	if dlq := kafkatest.ReadCommitted(t, client, appName+"-dlq"); len(dlq) != 0 {
		t.Errorf("%d dead letters, want none: %q", len(dlq), dlq)
	}
}

// readGreetings returns the greetings of the topic greetings by key, in
// offset order (the key decides the partition), checking that each record
// is a GreetResponse for its key.
func readGreetings(t *testing.T, client sarama.Client) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range kafkatest.Records(t, client, "greetings") {
		fields := map[protowire.Number]string{}
		for b := r.Value; len(b) > 0; {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 || typ != protowire.BytesType {
				t.Fatalf("record %q is not a GreetResponse", r.Value)
			}
			v, m := protowire.ConsumeString(b[n:])
			if m < 0 {
				t.Fatalf("record %q is not a GreetResponse", r.Value)
			}
			fields[num] = v
			b = b[n+m:]
		}
		if fields[1] != string(r.Key) {
			t.Errorf("record with key %q greets %q", r.Key, fields[1])
		}
		out[string(r.Key)] = append(out[string(r.Key)], fields[2])
	}
	return out
}

// TestModuleFile: module.yaml is a StateFun 2.x module (version "2.0") of
// the greeter: one function with its state, speaking StateFun 2.x's
// protocol, an ingress of GreetRequests and the egress, and no Kafka
// address, so that stateloop starts its embedded broker.
func TestModuleFile(t *testing.T) {
	m, err := module.ParseFile("module.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "2.0" || len(m.Warnings) > 0 {
		t.Errorf("version %q, warnings %v; want version 2.0 and no warnings", m.Version, m.Warnings)
	}
	e, ok := m.EndpointFor("example/greeter")
	if !ok || e.Protocol != module.Protocol2 || len(e.States) != 1 || e.States[0].Name != "seen_count" || e.URLFor("example/greeter") != "http://127.0.0.1:8000/statefun" {
		t.Errorf("endpoint of example/greeter: %+v", e)
	}
	wantTopo := topology.Topology{
		App:       appName,
		Functions: []functions.TypeName{"example/greeter"},
		Ingresses: []topology.Ingress{{Topic: "names", ValueType: "com.googleapis/example.GreetRequest", Targets: []functions.TypeName{"example/greeter"}}},
		Egresses:  []topology.Egress{{ID: "example/greets"}},
	}
	if diff := cmp.Diff(wantTopo, m.Topology(appName)); diff != "" {
		t.Errorf("topology (-want +got):\n%s", diff)
	}
	for _, in := range m.Ingresses {
		if len(in.Address) > 0 || in.ConsumerGroupID != appName {
			t.Errorf("ingress %s: address %q, consumer group %q; want none and %s", in.ID, in.Address, in.ConsumerGroupID, appName)
		}
	}
	for _, eg := range m.Egresses {
		if len(eg.Address) > 0 {
			t.Errorf("egress %s names Kafka at %q; without an address stateloop starts its embedded broker", eg.ID, eg.Address)
		}
	}
}

// TestRequirementsMatchInterop: the example pins what the StateFun 2.x
// interop tests test, package for package (they also pin aiohttp, which
// the example does not use).
func TestRequirementsMatchInterop(t *testing.T) {
	pins := func(file string) map[string]string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				name, version, _ := strings.Cut(l, "==")
				out[name] = version
			}
		}
		return out
	}
	interop, example := pins("../../internal/interop/python/requirements-2.2.txt"), pins("requirements.txt")
	var names []string
	for name, v := range example {
		names = append(names, name)
		if interop[name] != v {
			t.Errorf("requirements.txt pins %s==%s, internal/interop/python/requirements-2.2.txt %q", name, v, interop[name])
		}
	}
	slices.Sort(names)
	for _, must := range []string{"apache-flink-statefun", "protobuf", "Flask"} {
		if _, ok := slices.BinarySearch(names, must); !ok {
			t.Errorf("requirements.txt does not pin %s", must)
		}
	}
}
