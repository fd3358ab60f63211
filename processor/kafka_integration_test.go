//go:build integration

package processor

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
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
