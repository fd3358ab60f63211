//go:build integration

package ops_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// The tests in this file run the operator client's tests of state edits,
// dead-letter replays and timer cancels against a real Apache Kafka given
// by KAFKA_BROKERS (scripts/kafka.sh start prints it), with the build tag
// integration: `go test -tags integration -run Kafka ./internal/ops/`.
// Each uses an application name of its own, so they can run on a broker
// that other tests use.

func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	v := os.Getenv("KAFKA_BROKERS")
	if v == "" {
		t.Fatal("KAFKA_BROKERS is not set: start Kafka with scripts/kafka.sh start and export the address it prints")
	}
	return strings.Split(v, ",")
}

func kafkaApp(name string) string { return fmt.Sprintf("%s-%d", name, rand.Uint32()) }

func TestKafkaSetStateRacingIncrementsGivesExactCounts(t *testing.T) {
	checkSetStateRacingIncrements(t, kafkaBrokers(t), kafkaApp("race"))
}

func TestKafkaDeadLettersListFilterAndReplayOnce(t *testing.T) {
	checkDeadLettersListFilterAndReplayOnce(t, kafkaBrokers(t), kafkaApp("dlq"))
}

func TestKafkaTimersListAndCancel(t *testing.T) {
	checkTimersListAndCancel(t, kafkaBrokers(t), kafkaApp("tmr"))
}
