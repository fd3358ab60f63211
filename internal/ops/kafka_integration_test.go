//go:build integration

package ops_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stateloop/stateloop/internal/kafkatest"
)

// The tests in this file run the operator client's tests of state edits,
// dead-letter replays and timer cancels against a real Apache Kafka given
// by KAFKA_BROKERS (scripts/kafka.sh start prints it), with the build tag
// integration: `go test -tags integration -run Kafka ./internal/ops/`.
// Each uses an application name of its own, so they can run on a broker
// that other tests use.

func kafkaApp(name string) string { return fmt.Sprintf("%s-%d", name, rand.Uint32()) }

func TestKafkaSetStateRacingIncrementsGivesExactCounts(t *testing.T) {
	checkSetStateRacingIncrements(t, kafkatest.KafkaBrokers(t), kafkaApp("race"))
}

func TestKafkaDeadLettersListFilterAndReplayOnce(t *testing.T) {
	checkDeadLettersListFilterAndReplayOnce(t, kafkatest.KafkaBrokers(t), kafkaApp("dlq"))
}

func TestKafkaTimersListAndCancel(t *testing.T) {
	checkTimersListAndCancel(t, kafkatest.KafkaBrokers(t), kafkaApp("tmr"))
}
