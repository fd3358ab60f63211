package main

import (
	"context"
	"os"
	"testing"

	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/internal/bench"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// TestMain lets this test binary serve as the embedded broker's child
// process, as main does.
func TestMain(m *testing.M) {
	embedded.ServeIfChild()
	bench.ServeInstanceIfChild()
	os.Exit(m.Run())
}

// cli runs stateloop-bench in process with args, as main does but without
// exiting.
func cli(ctx context.Context, args ...string) kafkatest.CommandResult {
	return kafkatest.RunCommand(ctx, newBenchCommand(), nil, args...)
}
