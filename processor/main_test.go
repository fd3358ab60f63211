package processor

import (
	"os"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/embedded"
)

// processRoles are other ways this test binary runs as a child process of
// a test, chosen by an environment variable (added by files with build
// tags).
var processRoles []struct {
	env string
	run func() int
}

func TestMain(m *testing.M) {
	// This test binary also serves as the embedded broker's child process
	// and as the application process that the crash test kills.
	embedded.ServeIfChild()
	if os.Getenv(crashAppEnv) != "" {
		os.Exit(runCrashApp())
	}
	for _, role := range processRoles {
		if os.Getenv(role.env) != "" {
			os.Exit(role.run())
		}
	}
	// Under -race every process sleeps a second before it exits; spare the
	// child processes (GORACE is read at start-up).
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}
