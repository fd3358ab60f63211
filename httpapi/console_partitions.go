package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/stateloop/stateloop/internal/ops"
)

// consolePartitionsInfo is the body of GET /v1/console/partitions: the
// group and its partitions, from ops.Describe.
type consolePartitionsInfo struct {
	Group      string          `json:"group"`
	State      string          `json:"state"` // of the group: Stable, PreparingRebalance, Empty, ...
	Members    []ops.Member    `json:"members"`
	Partitions []ops.Partition `json:"partitions"`
	Lag        int64           `json:"lag"` // the sum over the partitions
	Errors     []string        `json:"errors,omitempty"`
}

// consolePartitions answers the group's members, which member owns each
// consumed partition (from the group description), and the lag of each:
// committed group offset against the partition's last stable offset. The
// lag counts committed records, not offsets: a partition that ends with a
// transaction's commit marker, as the loop topic does, is caught up when
// the group's offset points at the marker.
func (s *Server) consolePartitions(w http.ResponseWriter, r *http.Request) {
	c, err := s.opsClient()
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	d, err := c.Describe(ctx)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, consolePartitionsInfo{Group: d.Group, State: d.State, Members: d.Members, Partitions: d.Consumed, Lag: d.Lag, Errors: d.Errors})
}
