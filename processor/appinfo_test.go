package processor

import (
	"bytes"
	"testing"
	"time"

	"github.com/stateloop/stateloop/internal/wire"
)

// TestAppInfoIsTheSameOnEveryStart: the broker lets a static member that
// comes back keep its partitions without a rebalance only when its join
// metadata is unchanged (KIP-345), so what a thread publishes in it must
// not change between two starts of the same instance. A start time in it
// made every restart rebalance the whole group.
func TestAppInfoIsTheSameOnEveryStart(t *testing.T) {
	t.Parallel()
	topo, reg := cycleApp("same")
	start := func() []byte {
		p, err := New([]string{"127.0.0.1:1"}, topo, reg, WithInstanceID("i"))
		if err != nil {
			t.Fatal(err)
		}
		return p.appInfo("i", 0)
	}
	first := start()
	// a second apart, so that anything with the time of the start, even
	// truncated to the second, differs
	time.Sleep(1100 * time.Millisecond)
	second := start()
	if !bytes.Equal(first, second) {
		t.Errorf("two starts of one instance publish different join metadata:\n%s\n%s", first, second)
	}
	info, ok, err := wire.DecodeAppInfo(first)
	if err != nil || !ok || info.Instance != "i" || len(info.Functions) != 2 {
		t.Errorf("published %+v (ok %v, err %v), want instance i with two function types", info, ok, err)
	}
}
