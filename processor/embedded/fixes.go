package embedded

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cluster is a kfake cluster with the embedded broker's fixes of kfake's
// behaviour installed: the sessionKeeper and the completer.
type cluster struct {
	*kfake.Cluster
	cancel  context.CancelFunc
	clients []*rawClient
	keeper  *sessionKeeper
}

// installFixes installs the fixes through kfake's control functions.
func installFixes(cl *kfake.Cluster, logger *slog.Logger) *cluster {
	ctx, cancel := context.WithCancel(context.Background())
	addr := cl.ListenAddrs()[0]
	c := &cluster{Cluster: cl, cancel: cancel, clients: []*rawClient{newRawClient(addr), newRawClient(addr)}}
	c.keeper = &sessionKeeper{client: c.clients[0], logger: logger, ctx: ctx, watched: make(map[string]*generationWatch)}
	cl.ControlKey(int16(kmsg.SyncGroup), c.keeper.observeSync)
	(&completer{cl: cl, client: c.clients[1], logger: logger, ctx: ctx}).install()
	return c
}

// Close stops the fixes, then kfake.
func (c *cluster) Close() {
	c.cancel()
	for _, cl := range c.clients {
		cl.close()
	}
	c.keeper.wg.Wait()
	c.Cluster.Close()
}
