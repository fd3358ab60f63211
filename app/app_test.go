package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/pflag"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// TestMain lets this test binary serve as the embedded broker's child
// process, as a program's main does through app.Main.
func TestMain(m *testing.M) {
	embedded.ServeIfChild()
	os.Exit(m.Run())
}

var (
	echoFn   = functions.TypeName("test/echo")
	textType = functions.NewType("test/text", codec.Text())
)

// echoApp copies the records of topic in to topic out.
func echoApp() (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: echoFn,
		Function: functions.Router(functions.Handle(textType, func(ctx functions.Context, s string) error {
			ctx.SendEgress("test/out", functions.KafkaMessage("out", ctx.Self().ID, []byte(s)))
			return nil
		})),
		Egresses: []functions.TypeName{"test/out"},
	})
	return topology.Topology{
		App:       "echo",
		Functions: []functions.TypeName{echoFn},
		Ingresses: []topology.Ingress{{Topic: "in", ValueType: textType.Name(), Targets: []functions.TypeName{echoFn}}},
		Egresses:  []topology.Egress{{ID: "test/out", Topics: []topology.Topic{"out"}}},
	}, reg
}

func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	f := app.Flags{
		Brokers:        []string{"127.0.0.1:9092", "kafka", ":9092"},
		Partitions:     -1,
		CommitInterval: -time.Second,
		InstanceID:     "a b",
		Standbys:       -1,
		LogLevel:       "loud",
		LogFormat:      "xml",
	}
	err := f.Validate()
	if err == nil {
		t.Fatal("got nil, want errors")
	}
	for _, want := range []string{
		`--brokers "kafka": not host:port`,
		`--brokers ":9092": no host`,
		"--partitions -1: must be at least 1",
		"--commit-interval -1s: must be positive",
		`--instance-id "a b"`,
		"--standbys -1: must be between 0 and 16",
		`--log-level "loud": want debug, info, warn or error`,
		`--log-format "xml": want text or json`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 8 {
		t.Errorf("got %d problems, want 8:\n%v", got, err)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "app: ") {
			t.Errorf("problem %q does not start with \"app: \"", line)
		}
	}
}

func TestValidateListenOnlyWithoutBrokers(t *testing.T) {
	t.Parallel()
	if err := (app.Flags{Listen: "nope"}).Validate(); err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Errorf("got %v, want a --listen error", err)
	}
	if err := (app.Flags{Listen: "nope", Brokers: []string{"k:9092"}}).Validate(); err != nil {
		t.Errorf("--listen is unused with --brokers, got %v", err)
	}
}

func TestZeroFlagsAreValid(t *testing.T) {
	t.Parallel()
	if err := (app.Flags{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterDefaults(t *testing.T) {
	t.Setenv(app.EnvBrokers, "")
	var f app.Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := app.Flags{Listen: "127.0.0.1:9092", DataDir: "./stateloop-data", Partitions: 8, CommitInterval: 100 * time.Millisecond, LogLevel: "info", LogFormat: "text"}
	if f.Listen != want.Listen || f.DataDir != want.DataDir || f.Partitions != want.Partitions ||
		f.CommitInterval != want.CommitInterval || f.LogLevel != want.LogLevel || f.LogFormat != want.LogFormat ||
		len(f.Brokers) != 0 || f.InstanceID != "" {
		t.Errorf("got %+v, want %+v", f, want)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestRegisterBrokersFromEnvAndFlag(t *testing.T) {
	t.Setenv(app.EnvBrokers, " k1:9092, k2:9092 ,")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"env", nil, []string{"k1:9092", "k2:9092"}},
		{"flag wins", []string{"--brokers", "k3:9092,k4:9092"}, []string{"k3:9092", "k4:9092"}},
		{"empty flag means embedded", []string{"--brokers", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f app.Flags
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.Register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got := app.SplitBrokers(strings.Join(f.Brokers, ","))
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got brokers %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunRejectsInvalidFlagsAndApplication(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := app.Run(context.Background(), app.Flags{Partitions: -3}, echoApp, &out)
	if err == nil || !strings.Contains(err.Error(), "--partitions -3") {
		t.Errorf("got %v, want a --partitions error", err)
	}
	broken := func() (topology.Topology, *functions.Registry) {
		topo, reg := echoApp()
		topo.App = ""
		topo.Egresses[0].Topics = nil
		return topo, reg
	}
	err = app.Run(context.Background(), app.Flags{}, broken, &out)
	if err == nil || !strings.Contains(err.Error(), "app: empty") || !strings.Contains(err.Error(), "no topics") {
		t.Errorf("got %v, want every topology problem", err)
	}
	if out.Len() != 0 {
		t.Errorf("Run printed %q before failing, want nothing (no broker started)", out.String())
	}
}

func TestRunUnreachableBrokersSaysWhatToDo(t *testing.T) {
	t.Parallel()
	err := app.Run(context.Background(), app.Flags{Brokers: []string{"127.0.0.1:1"}}, echoApp, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to Kafka at 127.0.0.1:1") || !strings.Contains(err.Error(), "stateloop broker") {
		t.Errorf("got %v, want advice to start a broker", err)
	}
}

// TestRunEmbeddedBroker runs an application with its embedded broker in a
// child process and stops it like Ctrl-C does.
func TestRunEmbeddedBroker(t *testing.T) {
	t.Setenv(app.EnvBrokers, "")
	dir := t.TempDir()
	out, runErr, stop := startRun(t, app.Flags{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2, LogLevel: "warn"})
	waitForOutput(t, out, runErr, "application echo ready: 2 of 2 partitions, function types test/echo; reading topics in; writing topics out")
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	wantPrefixes := []string{
		"data dir " + dir + ", locked while this instance runs; instance id ",
		"embedded Kafka broker listening on 127.0.0.1:",
		"connecting to Kafka at 127.0.0.1:",
		"application echo ready: ",
		"stopping application echo: ",
		"application echo stopped",
	}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("got output lines:\n%s\nwant lines starting with %q", out, wantPrefixes)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("line %d: got %q, want it to start with %q", i+1, lines[i], p)
		}
	}
	if !strings.Contains(lines[1], "(data in "+filepath.Join(dir, "broker")+")") {
		t.Errorf("got %q, want the broker's data dir %s", lines[1], filepath.Join(dir, "broker"))
	}
	for _, p := range []string{"instance-id", "broker"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("data dir: %v", err)
		}
	}
}

// TestRunStopsWhenEmbeddedBrokerDies kills the broker child with SIGKILL:
// Run must stop the processor and return an error saying so.
func TestRunStopsWhenEmbeddedBrokerDies(t *testing.T) {
	t.Setenv(app.EnvBrokers, "")
	dir := t.TempDir()
	out, runErr, _ := startRun(t, app.Flags{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2, LogLevel: "error"})
	waitForOutput(t, out, runErr, "application echo ready")

	data, err := os.ReadFile(filepath.Join(dir, "broker", "broker.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var owner struct {
		BrokerPID int `json:"broker_pid"`
	}
	if err := json.Unmarshal(data, &owner); err != nil || owner.BrokerPID == 0 || owner.BrokerPID == os.Getpid() {
		t.Fatalf("broker.lock %q: no broker child pid (%v)", data, err)
	}
	if err := syscall.Kill(owner.BrokerPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runErr:
		if err == nil || !strings.Contains(err.Error(), "embedded Kafka broker stopped") {
			t.Errorf("got %v, want an error about the broker", err)
		}
		t.Logf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return 30s after the broker died; output:\n%s", out)
	}
}

func startRun(t *testing.T, f app.Flags) (*kafkatest.SyncBuffer, <-chan error, func()) {
	t.Helper()
	return startRunApp(t, f, echoApp)
}

// startRunApp runs app.Run on the application that build makes until the
// returned func or the end of the test cancels it (apptest.Start).
func startRunApp(t *testing.T, f app.Flags, build func() (topology.Topology, *functions.Registry)) (*kafkatest.SyncBuffer, <-chan error, func()) {
	t.Helper()
	r := apptest.Start(t, f, build)
	return r.Out, r.Err, r.Stop
}

func waitForOutput(t *testing.T, out *kafkatest.SyncBuffer, runErr <-chan error, want string) {
	t.Helper()
	(&apptest.Run{Out: out, Err: runErr}).WaitFor(t, want, 20*time.Second)
}

// TestRunExitsPromptlyWhenEmbeddedBrokerDiesUnderLoad is issue 10's
// process that stayed up for 45 s to 230 s after its embedded broker died
// (4 of 6 tries), blocked in sarama's CommitTxn: records stream in while
// the broker child is killed with SIGKILL, and Run must return within a
// few seconds with the broker's reason.
func TestRunExitsPromptlyWhenEmbeddedBrokerDiesUnderLoad(t *testing.T) {
	t.Setenv(app.EnvBrokers, "")
	dir := t.TempDir()
	out, runErr, _ := startRun(t, app.Flags{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 4, LogLevel: "error",
		CommitInterval: 20 * time.Millisecond})
	waitForOutput(t, out, runErr, "application echo ready")
	addr := strings.TrimSpace(strings.SplitN(strings.SplitN(out.String(), "connect with --brokers ", 2)[1], "\n", 2)[0])

	// a steady stream of records until the broker is gone
	stream := kafkatest.Client(t, []string{addr})
	prod, err := sarama.NewAsyncProducerFromClient(stream)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range prod.Errors() {
		}
	}()
	go func() {
		for range prod.Successes() {
		}
	}()
	streaming := make(chan struct{})
	defer close(streaming)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-streaming:
				return
			case prod.Input() <- &sarama.ProducerMessage{Topic: "in", Key: sarama.StringEncoder(strconv.Itoa(i % 64)), Value: sarama.StringEncoder("x")}:
			}
			if i%100 == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	waitForOutput(t, out, runErr, "") // still running
	time.Sleep(2 * time.Second)       // transactions in flight

	data, err := os.ReadFile(filepath.Join(dir, "broker", "broker.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var owner struct {
		BrokerPID int `json:"broker_pid"`
	}
	if err := json.Unmarshal(data, &owner); err != nil || owner.BrokerPID == 0 {
		t.Fatalf("broker.lock %q: no broker child pid (%v)", data, err)
	}
	if err := syscall.Kill(owner.BrokerPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	const limit = 10 * time.Second
	select {
	case err := <-runErr:
		took := time.Since(killed)
		t.Logf("Run returned %v after the broker died: %v", took.Round(10*time.Millisecond), err)
		if err == nil || !strings.Contains(err.Error(), "embedded Kafka broker stopped") || !strings.Contains(err.Error(), "signal: killed") {
			t.Errorf("got %v, want an error saying the embedded broker stopped, with its reason (signal: killed)", err)
		}
		if took > limit {
			t.Errorf("Run returned %v after the broker died, want within %v", took, limit)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("Run did not return 5 minutes after the broker died; output:\n%s", out)
	}
}
