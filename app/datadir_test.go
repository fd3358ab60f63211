package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// TestRunRefusesADataDirInUse is the regression test of issue 10 (3): two
// instances started on one --data-dir shared an instance id and fenced
// each other (with --brokers), or the second waited 30 s for the embedded
// broker's data and then failed. Now the second fails at once, naming the
// directory, the process that uses it and what to do, and the first goes
// on. Each instance says at start which data dir and instance id it uses.
func TestRunRefusesADataDirInUse(t *testing.T) {
	t.Setenv(app.EnvBrokers, "")
	tests := []struct {
		name     string
		embedded bool
	}{
		{"embedded broker", true},
		{"external broker", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := app.Flags{DataDir: dir, Partitions: 2, CommitInterval: 20 * time.Millisecond, LogLevel: "warn"}
			if tc.embedded {
				f.Listen = "127.0.0.1:0"
			} else {
				f.Brokers = kafkatest.StartKfake(t)
			}
			first := apptest.Start(t, f, echoApp)
			first.WaitFor(t, "application echo ready", 30*time.Second)
			brokers := f.Brokers
			if tc.embedded {
				_, after, _ := strings.Cut(first.Out.String(), "connect with --brokers ")
				addr, _, _ := strings.Cut(after, "\n")
				brokers = []string{addr}
			}
			id, err := os.ReadFile(filepath.Join(dir, "instance-id"))
			if err != nil {
				t.Fatal(err)
			}
			if want := "data dir " + dir; !strings.Contains(first.Out.String(), want) || !strings.Contains(first.Out.String(), "instance id "+strings.TrimSpace(string(id))) {
				t.Errorf("the first instance's output does not say %q and instance id %s:\n%s", want, id, first.Out)
			}

			// the second fails at once (with the embedded broker, it
			// listens on a port of its own, so only the data dir is shared)
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			out := &kafkatest.SyncBuffer{}
			start := time.Now()
			err = app.Run(ctx, f, echoApp, out)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("the second instance on data dir %s ran for %v and returned nil; output:\n%s", dir, took.Round(time.Millisecond), out)
			}
			for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid()), "--data-dir", "stop"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the second instance's error %q does not say %q", err, want)
				}
			}
			if took > 5*time.Second {
				t.Errorf("the second instance failed after %v, want at once", took.Round(time.Millisecond))
			}

			// the first goes on
			select {
			case err := <-first.Err:
				t.Fatalf("the first instance stopped: %v; output:\n%s", err, first.Out)
			default:
			}
			client := kafkatest.Client(t, brokers)
			sp, err := sarama.NewSyncProducerFromClient(client)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "in", Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("after the second")}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for !slices.Contains(kafkatest.ReadCommitted(t, client, "out"), "after the second") {
				if time.Now().After(deadline) {
					t.Fatalf("the first instance did not echo a record after the second failed; output:\n%s", first.Out)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
