//go:build integration

package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file run against a real Apache Kafka given by
// KAFKA_BROKERS (scripts/kafka.sh start prints it), with the build tag
// integration: `go test -tags integration -run Kafka ./processor/`. Topic
// names carry a random suffix, so runs on one broker do not meet.

func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	v := os.Getenv("KAFKA_BROKERS")
	if v == "" {
		t.Fatal("KAFKA_BROKERS is not set: start Kafka with scripts/kafka.sh start and export the address it prints")
	}
	return strings.Split(v, ",")
}

func uniqueApp(base string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return base + "-" + hex.EncodeToString(b[:])
}

// TestKafkaExactlyOnceAcrossAbortsAndRestarts is the exactly-once scenario
// (10,000 records through a cycle, one commit in six aborted, restarts on
// reused local state) on Apache Kafka.
func TestKafkaExactlyOnceAcrossAbortsAndRestarts(t *testing.T) {
	exactlyOnceScenario(t, kafkaBrokers(t), uniqueApp("eos"), false)
}

// TestKafkaExactlyOnceAcrossFencing adds two fencings of the running
// producer by a twin with the same transactional id, on Apache Kafka.
func TestKafkaExactlyOnceAcrossFencing(t *testing.T) {
	exactlyOnceScenario(t, kafkaBrokers(t), uniqueApp("fenced"), true)
}

const zombieAppEnv = "STATELOOP_TEST_ZOMBIE_APP"

func init() {
	processRoles = append(processRoles, struct {
		env string
		run func() int
	}{zombieAppEnv, runZombieApp})
}

// runZombieApp runs one processor of the cycle application on
// KAFKA_BROKERS until SIGTERM; it prints READY once it owns its partitions.
func runZombieApp() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	topo, reg := cycleApp(os.Getenv(zombieAppEnv))
	p, err := New(strings.Split(os.Getenv("KAFKA_BROKERS"), ","), topo, reg, WithInstanceID("zombie"),
		WithCommitInterval(20*time.Millisecond), WithSessionTimeout(2*time.Second), WithTransactionTimeout(30*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "zombie app:", err)
		return 1
	}
	return serveProcess(ctx, "zombie app", p)
}

// TestKafkaZombieInstanceIsFenced freezes an instance with SIGSTOP in the
// middle of a stream until its group session expires and another instance
// has taken its partitions and finished the work, then resumes it with
// SIGCONT: whatever the frozen instance had in flight must be fenced, so
// the counts stay exact.
func TestKafkaZombieInstanceIsFenced(t *testing.T) {
	brokers := kafkaBrokers(t)
	app := uniqueApp("zombie")
	topo, reg := cycleApp(app)
	client := testClient(t, brokers)

	zombie := startAppProcess(t, zombieAppEnv+"="+app)
	cmd := zombie.cmd
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	perID := map[string]int{}
	const total, ids = 6000, 64
	produceSeqs(t, client, app+"-in", 0, 3000, ids, perID)
	waitFor(t, 60*time.Second, "the first instance at work", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= 300, fmt.Sprintf("%d done", n)
	})
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := true
	defer func() {
		if frozen {
			_ = cmd.Process.Signal(syscall.SIGCONT)
		}
	}()

	p, err := New(brokers, topo, reg, WithInstanceID("heir"), WithCommitInterval(20*time.Millisecond), WithSessionTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	produceSeqs(t, client, app+"-in", 3000, total, ids, perID)
	waitFor(t, 90*time.Second, "the heir finished every record", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total, fmt.Sprintf("%d done, heir %+v", n, p.Stats())
	})
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	frozen = false
	// give the resumed zombie time to try to commit and to rejoin
	time.Sleep(8 * time.Second)
	checkCycleExact(t, client, topo, perID)
}
