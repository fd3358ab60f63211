package embedded

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// installFixes installs the embedded broker's fixes of kfake's behaviour
// through kfake's control functions: the sessionKeeper and the completer.
// It returns the function that stops them.
func installFixes(cl *kfake.Cluster, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	addr := cl.ListenAddrs()[0]
	clients := []*rawClient{newRawClient(addr), newRawClient(addr)}
	keeper := &sessionKeeper{client: clients[0], logger: logger, ctx: ctx, watched: make(map[string]*generationWatch)}
	cl.ControlKey(int16(kmsg.SyncGroup), keeper.observeSync)
	(&completer{cl: cl, client: clients[1], logger: logger, ctx: ctx}).install()
	return func() {
		cancel()
		for _, c := range clients {
			c.close()
		}
		keeper.wg.Wait()
	}
}
