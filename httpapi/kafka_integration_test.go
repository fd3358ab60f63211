//go:build integration

package httpapi_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// The tests in this file run against a real Apache Kafka given by
// KAFKA_BROKERS (scripts/kafka.sh start prints it; it runs Kafka with
// auto.create.topics.enable=true, Kafka's default), with the build tag
// integration: `go test -tags integration -run Kafka ./httpapi/`.

func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	v := os.Getenv("KAFKA_BROKERS")
	if v == "" {
		t.Fatal("KAFKA_BROKERS is not set: start Kafka with scripts/kafka.sh start and export the address it prints")
	}
	return strings.Split(v, ",")
}

// Regression test for issue 10, item 7, on Apache Kafka with topic
// auto-creation on: state GETs of function types without a table, a
// gokaview view of one, and the listener's reply reader and producer
// (before the application has created its topics) created topics with the
// broker's defaults. They must create none.
func TestKafkaReadsCreateNoTopic(t *testing.T) {
	brokers := kafkaBrokers(t)
	client := kafkatest.Client(t, brokers)
	app := fmt.Sprintf("reads-%d", rand.Uint32())
	topo := topology.Topology{App: app, Partitions: 4, Namespaces: []string{"dyn"}}
	a := startAPI(t, brokers, topo, httpapi.Config{})
	for i := range 10 {
		fn := functions.TypeName(fmt.Sprintf("dyn/random-%d", i))
		st, _, msg := getState(t, a.url, string(fn)+"/x")
		if st != http.StatusNotFound || !strings.Contains(msg, string(topo.TableTopic(fn))+" does not exist") {
			t.Errorf("GET the state of %s/x: %d %q, want 404 saying its table does not exist", fn, st, msg)
		}
	}
	if r := post(t, a.url+"/v1/functions/dyn/random-0/x", string(functions.StringType.Name()), str(t, "x")); r.status != http.StatusServiceUnavailable {
		t.Errorf("POST before the application created its loop topic: %d %s, want 503", r.status, r.body)
	}
	fn := functions.TypeName("dyn/viewed")
	if _, err := gokaview.NewView(brokers, topo, fn, goka.WithViewStorageBuilder(storage.MemoryBuilder())); !errors.Is(err, gokaview.ErrNoTable) {
		t.Errorf("gokaview.NewView of %s: %v, want an error wrapping ErrNoTable", fn, err)
	}
	// Kafka creates a topic asynchronously: look for a few seconds
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if created := slices.DeleteFunc(kafkatest.Topics(t, client), func(s string) bool { return !strings.HasPrefix(s, app+"-") }); len(created) > 0 {
			t.Fatalf("topics of application %s after the reads: %v, want none", app, created)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The operator's API on Apache Kafka: state edits in order with the
// address's messages, and dead-letter replays once each, answered through
// the listener's reply reader.
func TestKafkaOperatorAPIEditsStateInOrder(t *testing.T) {
	checkOperatorAPIEditsStateInOrder(t, startOpsAPIOn(t, kafkaBrokers(t), fmt.Sprintf("opsstate-%d", rand.Uint32())))
}

func TestKafkaOperatorAPIListsAndReplaysDeadLetters(t *testing.T) {
	checkOperatorAPIListsAndReplaysDeadLetters(t, startOpsAPIOn(t, kafkaBrokers(t), fmt.Sprintf("opsdlq-%d", rand.Uint32())))
}
