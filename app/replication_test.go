package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

func TestReplicationFlagsDefaultToChoosingFromTheCluster(t *testing.T) {
	var f app.Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if f.ReplicationFactor != 0 || f.MinInsyncReplicas != 0 {
		t.Errorf("defaults: --replication-factor %d, --min-insync-replicas %d; want 0 and 0 (chosen from the cluster)", f.ReplicationFactor, f.MinInsyncReplicas)
	}
	if err := fs.Parse([]string{"--replication-factor", "3", "--min-insync-replicas", "2"}); err != nil {
		t.Fatal(err)
	}
	if f.ReplicationFactor != 3 || f.MinInsyncReplicas != 2 {
		t.Errorf("parsed --replication-factor %d, --min-insync-replicas %d; want 3 and 2", f.ReplicationFactor, f.MinInsyncReplicas)
	}
}

func TestValidateRefusesImpossibleReplicationFlags(t *testing.T) {
	t.Parallel()
	err := app.Flags{ReplicationFactor: -2, MinInsyncReplicas: -3}.Validate()
	for _, want := range []string{"--replication-factor -2: must be at least 1", "--min-insync-replicas -3: must be at least 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	err = app.Flags{ReplicationFactor: 2, MinInsyncReplicas: 3}.Validate()
	if err == nil || !strings.Contains(err.Error(), "--min-insync-replicas 3 is more than --replication-factor 2") {
		t.Errorf("got %v, want min ISR above the factor refused", err)
	}
	if err := (app.Flags{ReplicationFactor: -1, MinInsyncReplicas: -1}).Validate(); err != nil {
		t.Errorf("-1 (the broker's default) refused: %v", err)
	}
}

func TestRunRefusesAReplicationFactorAboveTheBrokerCount(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.StartKfake(t) // one broker
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := app.Run(ctx, app.Flags{Brokers: brokers, Partitions: 2, ReplicationFactor: 3, LogLevel: "error"}, echoApp, &out)
	if err == nil || !strings.Contains(err.Error(), "replication factor 3 is more than the 1 broker(s)") ||
		!strings.Contains(err.Error(), "--replication-factor") {
		t.Fatalf("Run with --replication-factor 3 on one broker: %v; want it refused at start-up, naming the flag", err)
	}
	if strings.Contains(out.String(), "ready") {
		t.Errorf("the application got ready before refusing:\n%s", out.String())
	}
}
