//go:build integration

package main

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stateloop/stateloop/internal/kafkatest"
)

// The tests in this file run the replay tests with kill -9 against a real
// Apache Kafka given by KAFKA_BROKERS (scripts/kafka.sh start prints it),
// with the build tag integration: `go test -tags integration -run Kafka
// ./cmd/stateloop/`. There a killed runtime leaves its transaction open,
// and the restarted one (the same instance id) fences and aborts it.

func TestKafkaReplayExactlyOnceAcrossKill9OfTheReplayCommand(t *testing.T) {
	bin := stateloopBinary(t)
	checkReplayAcrossKill9OfTheReplayCommand(t, bin, kafkatest.KafkaBrokers(t), fmt.Sprintf("killcli-%d", rand.Uint32()), false)
}

func TestKafkaReplayExactlyOnceAcrossKill9OfTheRuntime(t *testing.T) {
	checkReplayAcrossKill9OfTheRuntime(t, kafkatest.KafkaBrokers(t), fmt.Sprintf("killrt-%d", rand.Uint32()))
}
