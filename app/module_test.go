package app_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// The module application: a StateFun module.yaml binds example/* to an
// HTTP endpoint serving a greeter written with the official Go SDK, reads
// names from a Kafka ingress, and declares a Kafka egress. The greeter
// sends each greeting to local/shout, a Go function of the same
// application, which writes it in capitals to the module's egress.

const greeterModule = `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: %s/{function.name}
  transport:
    type: io.statefun.transports.v1/async
    call: 10s
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  consumerGroupId: %s
  topics:
    - topic: %s-names
      valueType: io.statefun.types/string
      targets:
        - example/greeter
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
`

func greeterServer(t *testing.T) *httptest.Server {
	t.Helper()
	seen := statefun.ValueSpec{Name: "seen", ValueType: statefun.Int32Type}
	b := statefun.StatefulFunctionsBuilder()
	err := b.WithSpec(statefun.StatefulFunctionSpec{
		FunctionType: statefun.TypeNameFrom("example/greeter"),
		States:       []statefun.ValueSpec{seen},
		Function: statefun.StatefulFunctionPointer(func(ctx statefun.Context, msg statefun.Message) error {
			var n int32
			ctx.Storage().Get(seen, &n)
			n++
			ctx.Storage().Set(seen, n)
			ctx.Send(statefun.MessageBuilder{
				Target: statefun.Address{FunctionType: statefun.TypeNameFrom("local/shout"), Id: ctx.Self().Id},
				Value:  fmt.Sprintf("hello %s #%d", msg.AsString(), n),
			})
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.AsHandler())
	t.Cleanup(srv.Close)
	return srv
}

func shoutApp(egressTopic string) func() (topology.Topology, *functions.Registry) {
	return func() (topology.Topology, *functions.Registry) {
		reg := functions.NewRegistry()
		reg.MustRegister(functions.Spec{
			Type: "local/shout",
			Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
				ctx.SendEgress("example/greets", functions.KafkaMessage(egressTopic, ctx.Self().ID, []byte(strings.ToUpper(s))))
				return nil
			})),
			Egresses: []functions.TypeName{"example/greets"},
		})
		return topology.Topology{Functions: []functions.TypeName{"local/shout"}}, reg
	}
}

// TestRunModuleMixesSDKAndGoFunctions runs an application from a
// module.yaml plus a Go function, twice on one data directory: the SDK
// greeter's state survives the restart.
func TestRunModuleMixesSDKAndGoFunctions(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	const group = "modgreet"
	dir := t.TempDir()
	path := filepath.Join(dir, "module.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, greeterModule, greeterServer(t).URL, group, group), 0o644); err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("greetings", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	name, err := functions.StringType.Codec().Encode("Alice")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	greet := func() {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: group + "-names", Key: sarama.StringEncoder("Alice"), Value: sarama.ByteEncoder(name)}); err != nil {
			t.Fatal(err)
		}
	}
	f := app.Flags{Brokers: brokers, DataDir: filepath.Join(dir, "data"), Partitions: 2, LogLevel: "warn", ModuleFiles: []string{path}}
	for round := 1; round <= 2; round++ {
		out, runErr, stop := startRunApp(t, f, shoutApp("greetings"))
		waitForOutput(t, out, runErr, "application "+group+" ready")
		greet()
		want := fmt.Sprintf("HELLO ALICE #%d", round)
		waitForRecord(t, client, "greetings", want)
		stop()
		if err := <-runErr; err != nil {
			t.Fatalf("Run: %v\noutput:\n%s", err, out)
		}
		if round == 1 && !strings.Contains(out.String(), "application name "+group) {
			t.Errorf("output does not say the application's name came from consumerGroupId:\n%s", out)
		}
	}
}

// waitForRecord waits until a read_committed consumer sees want on topic.
func waitForRecord(t *testing.T, client sarama.Client, topic, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for ctx.Err() == nil {
		got = kafkatest.ReadCommitted(t, client, topic)
		for _, v := range got {
			if v == want {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("topic %s: no record %q in 20s; got %q", topic, want, got)
}

// TestRunModuleReportsEveryProblemWithItsLine: a bad module.yaml fails at
// start-up, naming every problem with its line.
func TestRunModuleReportsEveryProblemWithItsLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "module.yaml")
	bad := `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: ftp://nowhere/{function.name}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  topics:
    - topic: names
      targets:
        - example/greeter
---
kind: io.statefun.kafka.v1/egres
spec:
  id: example/out
`
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	f := app.Flags{Brokers: []string{"127.0.0.1:1"}, ModuleFiles: []string{path}}
	err := app.Run(context.Background(), f, shoutApp("x"), &kafkatest.SyncBuffer{})
	if err == nil {
		t.Fatal("Run with a bad module.yaml returned nil")
	}
	for _, want := range []string{"module.yaml:4:", "urlPathTemplate", "module.yaml:10:", "valueType", "module.yaml:14:", "io.statefun.kafka.v1/egres"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestLoadModuleNotesPoolTTLOnlyWhenSet: regression for issue 10 item 16,
// the note "pool_ttl is ignored" was printed for every v2 endpoint with
// the async transport, also when the file never set pool_ttl (the parser
// fills in StateFun's default of 15 s).
func TestLoadModuleNotesPoolTTLOnlyWhenSet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		transport string
		wantNote  bool
	}{
		{"no transport", "", false},
		{"async without pool_ttl", "\n  transport:\n    type: io.statefun.transports.v1/async\n    call: 10s", false},
		{"async with pool_ttl", "\n  transport:\n    type: io.statefun.transports.v1/async\n    pool_ttl: 30s", true},
		{"pool_ttl without a type", "\n  transport:\n    pool_ttl: 0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "module.yaml")
			yaml := "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: example/*\n  urlPathTemplate: http://127.0.0.1:8000/{function.name}" + tc.transport + "\n"
			if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			mod, err := app.LoadModule(path, nil)
			if err != nil {
				t.Fatalf("LoadModule: %v", err)
			}
			defer mod.Close()
			var notes []string
			for _, n := range mod.Notes() {
				if strings.Contains(n, "pool_ttl") {
					notes = append(notes, n)
				}
			}
			switch {
			case tc.wantNote && len(notes) != 1:
				t.Errorf("notes about pool_ttl: got %q, want one", notes)
			case !tc.wantNote && len(notes) != 0:
				t.Errorf("notes about pool_ttl: got %q, want none: the file does not set it", notes)
			}
		})
	}
}

// TestLoadModulesReadsStateFun2And3FilesAsOneApplication: a version
// "2.0" file and a kind/spec file are one application; a note names the
// StateFun 2.x protocol of the first, and problems of both files are all
// listed.
func TestLoadModulesReadsStateFun2And3FilesAsOneApplication(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	old := write("old.yaml", `version: "2.0"
module:
  meta: {type: remote}
  spec:
    functions:
      - function:
          meta: {kind: http, type: legacy/greeter}
          spec:
            endpoint: http://127.0.0.1:8000/statefun
            states: [{name: seen_count}]
`)
	modern := write("new.yaml", "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: modern/*\n  urlPathTemplate: http://127.0.0.1:8001/{function.name}\n")
	mod, err := app.LoadModules([]string{old, modern}, nil)
	if err != nil {
		t.Fatalf("LoadModules: %v", err)
	}
	defer mod.Close()
	if n := mod.Notes(); len(n) != 1 || !strings.Contains(n[0], old+`: a StateFun 2.x module (version "2.0")`) {
		t.Errorf("notes %q, want one about the StateFun 2.x protocol of %s", n, old)
	}
	topo, _, err := mod.Merge(topology.Topology{App: "mixed"}, functions.NewRegistry())
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if len(topo.Functions) != 1 || topo.Functions[0] != "legacy/greeter" || len(topo.Namespaces) != 1 || topo.Namespaces[0] != "modern" {
		t.Errorf("functions %v and namespaces %v, want legacy/greeter and modern", topo.Functions, topo.Namespaces)
	}

	bad1 := write("bad1.yaml", "version: \"2.0\"\nmodule:\n  meta: {type: remote}\n  spec:\n    functions:\n      - function:\n          meta: {kind: http, type: legacy/greeter}\n          spec: {}\n")
	bad2 := write("bad2.yaml", "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: legacy/greeter\n")
	_, err = app.LoadModules([]string{bad1, bad2}, nil)
	for _, want := range []string{bad1 + ":8:17", "endpoint: missing", bad2 + ":3:3", "urlPathTemplate: missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadModules of two bad files: %v; want %q in it", err, want)
		}
	}
}
