//go:build integration

package smoke

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestKafkaSmokeKillAnytime runs the smoke test on Apache Kafka
// (KAFKA_BROKERS, e.g. from scripts/kafka.sh start, with
// group.min.session.timeout.ms at most 1s) with kills that do not wait for
// the group to settle: workers are also killed while they recover their
// state or join the group. TestRunKillAnytimeOnEmbeddedBroker does the
// same on the embedded broker.
func TestKafkaSmokeKillAnytime(t *testing.T) {
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("KAFKA_BROKERS is not set")
	}
	cfg := testConfig(t, strings.Split(brokers, ",")...)
	cfg.Messages, cfg.Rate, cfg.Kills, cfg.Seed = 4000, 2000, 6, 0
	cfg.Timeout = 2 * time.Minute
	runKillAnytime(t, cfg)
}
