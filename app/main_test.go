package app_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/app"
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
