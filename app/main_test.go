package app_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
)

func TestCommandHelpListsTheFlags(t *testing.T) {
	cmd := app.Command("echo", echoApp)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--help"})
	if code := app.Execute(cmd); code != 0 {
		t.Fatalf("got exit status %d, want 0; output:\n%s", code, out.String())
	}
	for _, flag := range []string{"--brokers", "--listen", "--data-dir", "--partitions", "--commit-interval", "--instance-id", "--log-level", "--log-format", app.EnvBrokers} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("help lacks %s:\n%s", flag, out.String())
		}
	}
}

func TestExecutePrintsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"invalid flags, all of them", []string{"--partitions", "-1", "--log-format", "xml"},
			[]string{"error: app: --partitions -1: must be at least 1\n  app: --log-format \"xml\": want text or json\n"}},
		{"unknown flag", []string{"--bogus"}, []string{"error: unknown flag: --bogus\n  run 'echo --help' for usage\n"}},
		{"arguments", []string{"extra"}, []string{"error: ", "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := app.Command("echo", echoApp)
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(tc.args)
			if code := app.Execute(cmd); code != 1 {
				t.Errorf("got exit status %d, want 1", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("got error output %q, want it to contain %q", errOut.String(), w)
				}
			}
			if out.Len() != 0 {
				t.Errorf("got output %q, want none", out.String())
			}
		})
	}
}

// TestCommandPassesProcessorOptions: regression for issue 13 item 4,
// app.Main took no processor options, so a program run by it could not
// set what has no flag (retries, the commit count, ...). The options reach
// processor.New, which reports invalid ones as every other problem.
func TestCommandPassesProcessorOptions(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	cmd := app.Command("echo", echoApp, app.WithProcessorOptions(processor.WithRetries(-1, 0), processor.WithCommitCount(0)))
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--brokers", brokers[0], "--data-dir", ""})
	if code := app.Execute(cmd); code != 1 {
		t.Fatalf("got exit status %d, want 1; output:\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"processor: retries -1: must not be negative", "processor: commit count 0: must be positive"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("error output %q lacks %q", errOut.String(), want)
		}
	}
}
