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
// state or join the group. On kfake that can leave a killed member in the
// group for good (see Config.KillAnytime), so it runs on Kafka only.
func TestKafkaSmokeKillAnytime(t *testing.T) {
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("KAFKA_BROKERS is not set")
	}
	cfg := testConfig(t, strings.Split(brokers, ",")...)
	cfg.Messages, cfg.Rate, cfg.Kills, cfg.Seed = 4000, 2000, 6, 0
	cfg.KillAnytime = true
	cfg.Timeout = 2 * time.Minute
	res, _, err := runSmoke(t, cfg)
	if err != nil {
		t.Fatalf("smoke run failed: %v", err)
	}
	if len(res.Kills) != 6 || res.Verified != cfg.Generator.IDs {
		t.Errorf("got %d kills and %d ids verified, want 6 and %d", len(res.Kills), res.Verified, cfg.Generator.IDs)
	}
}
