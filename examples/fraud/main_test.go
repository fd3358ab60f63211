package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

func TestOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    fraud.Config
		latency time.Duration
		wantErr []string
	}{
		{name: "defaults", want: fraud.Config{Window: fraud.DefaultWindow, Threshold: fraud.DefaultThreshold, MerchantTTL: fraud.DefaultMerchantTTL}},
		{name: "flags",
			args:    []string{"--window", "30s", "--threshold", "0.9", "--merchant-ttl", "1m", "--merchant-latency", "5ms", "--merchant-budget", "20ms"},
			want:    fraud.Config{Window: 30 * time.Second, Threshold: 0.9, MerchantTTL: time.Minute, ServiceBudget: 20 * time.Millisecond},
			latency: 5 * time.Millisecond},
		{name: "environment",
			env:  map[string]string{"FRAUD_WINDOW": "45s", "FRAUD_THRESHOLD": "0.7", "FRAUD_MERCHANT_TTL": "2m", "FRAUD_MERCHANT_LATENCY": "1ms", "FRAUD_MERCHANT_BUDGET": "3ms"},
			want: fraud.Config{Window: 45 * time.Second, Threshold: 0.7, MerchantTTL: 2 * time.Minute, ServiceBudget: 3 * time.Millisecond}, latency: time.Millisecond},
		{name: "flags override the environment",
			env:  map[string]string{"FRAUD_WINDOW": "45s"},
			args: []string{"--window", "10s"},
			want: fraud.Config{Window: 10 * time.Second, Threshold: fraud.DefaultThreshold, MerchantTTL: fraud.DefaultMerchantTTL}},
		{name: "bad environment",
			env:     map[string]string{"FRAUD_WINDOW": "a month", "FRAUD_THRESHOLD": "high"},
			wantErr: []string{"FRAUD_WINDOW", "FRAUD_THRESHOLD"}},
		{name: "bad flags",
			args:    []string{"--window", "0s", "--threshold", "1.5", "--merchant-latency", "-1s", "--merchant-ttl", "-1s"},
			wantErr: []string{"--window", "threshold 1.5", "--merchant-latency", "merchant ttl"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var o options
			fs := pflag.NewFlagSet("fraud", pflag.ContinueOnError)
			o.register(fs, func(k string) string { return tc.env[k] })
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := o.config()
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("got %+v, want an error", cfg)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Service == nil {
				t.Fatal("no merchant service")
			}
			cfg.Service = nil
			if !cmp.Equal(cfg, tc.want) || o.latency != tc.latency { // Service is nil in both
				t.Errorf("got %+v, latency %v, want %+v, latency %v", cfg, o.latency, tc.want, tc.latency)
			}
		})
	}
}

// TestCommandWindowPassesInRealTime runs the program's command, as `go run
// ./examples/fraud --window 2s --threshold 0.5` would, against an
// in-process broker. It reports a fraud, then probes the account with one
// transaction after another until the report counts (and, over the
// lowered threshold, raises an alert) and until it no longer does: not
// before the window has passed, and not much later.
func TestCommandWindowPassesInRealTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := kafkatest.StartKfake(t)
	const window = 2 * time.Second
	out := &kafkatest.SyncBuffer{}
	cmd := command(func(string) string { return "" })
	cmd.SetArgs([]string{"--brokers", brokers[0], "--data-dir", t.TempDir(), "--partitions", "2",
		"--commit-interval", "20ms", "--log-level", "error", "--window", window.String(), "--threshold", "0.5"})
	cmd.SetOut(out)
	cmd.SetErr(out)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(runCtx) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("command: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the command did not return after its context was cancelled")
		}
		if testing.Verbose() {
			t.Logf("output:\n%s", out)
		}
	}()
	for !strings.Contains(out.String(), "application fraud ready") {
		select {
		case err := <-done:
			t.Fatalf("the command returned before it was ready: %v\n%s", err, out)
		case <-ctx.Done():
			t.Fatalf("not ready:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !strings.Contains(out.String(), "fraud reports count for 2s, alerts over 0.5") {
		t.Errorf("output lacks the settings:\n%s", out)
	}

	client := kafkatest.Client(t, brokers)
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	probes := 0
	// probe scores one more transaction of the account at a risky merchant
	// and returns its decision: 1 fraud there scores 0.73
	probe := func() fraud.Decision {
		t.Helper()
		probes++
		b, _ := json.Marshal(fraud.Transaction{ID: fmt.Sprintf("probe-%d", probes), Account: "acct-1", Merchant: "late-night-casino", Amount: 100})
		produce(t, producer, fraud.TransactionsTopic, "", string(b))
		ds := readDecisions(t, client, fraud.ScoresTopic, probes)
		for _, d := range ds {
			if d.Transaction.ID == fmt.Sprintf("probe-%d", probes) {
				return d
			}
		}
		t.Fatalf("probe %d: no decision among %+v", probes, ds)
		return fraud.Decision{}
	}

	reported := time.Now()
	produce(t, producer, fraud.ConfirmedFraudTopic, "acct-1", "")
	for d := probe(); d.Features.FraudCount == 0; d = probe() {
		if time.Since(reported) > 10*time.Second {
			t.Fatal("the report does not count after 10s")
		}
	}
	counted := time.Now()
	var last fraud.Decision
	for last = probe(); last.Features.FraudCount == 1; last = probe() {
		if !last.Alert {
			t.Errorf("%s: score %.3f with one fraud: no alert over 0.5", last.Transaction.ID, last.Score)
		}
		time.Sleep(100 * time.Millisecond)
	}
	forgotten := time.Since(reported)
	if last.Features.FraudCount != 0 || last.Alert {
		t.Errorf("after the window: %+v, want a count of 0 and no alert", last)
	}
	if forgotten < window || forgotten > window+5*time.Second {
		t.Errorf("the report was forgotten %v after it was written (counted after %v), want after the %v window, and not much later",
			forgotten, counted.Sub(reported), window)
	}
	if alerts := readDecisions(t, client, fraud.AlertsTopic, 1); len(alerts) == 0 || alerts[0].Features.FraudCount != 1 {
		t.Errorf("alerts: %+v, want the probes that counted the report", alerts)
	}
}
