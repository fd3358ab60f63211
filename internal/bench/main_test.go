package bench

import (
	"os"
	"testing"
)

// TestMain lets this test binary serve as an instance of the recovery
// bench, as the bench's main does.
func TestMain(m *testing.M) {
	ServeInstanceIfChild()
	os.Exit(m.Run())
}
