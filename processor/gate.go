package processor

import (
	"github.com/stateloop/stateloop/internal/wire"
)

// sendLoopRouted writes an ingress message for a partition that is not
// delivered directly, and remembers its offset after the commit: direct
// delivery to that partition must wait until the record is processed.
func (w *worker) sendLoopRouted(env wire.Envelope) {
	m := w.loopRecord(env)
	m.Metadata = routedRef{part: m.Partition}
	w.send(m)
}

// routedRef marks a loop record written for an ingress record.
type routedRef struct{ part int32 }

// gate decides when ingress records may invoke functions of a loop
// partition directly, in the ingress record's transaction, instead of
// taking a hop through the loop topic. Ingress records of one ingress
// partition to one address must stay in order, so direct delivery waits
// until the partition has processed every loop record that might carry an
// earlier such record: the backlog found at assignment (records routed by
// a previous owner) and everything this worker routed itself.
type gate struct {
	// until is the last loop offset that must be processed first; -1: none
	until int64
	// processed is the highest loop offset processed
	processed int64
	// routedInTxn counts records routed to the partition in the open
	// transaction; their offsets are known only after the commit
	routedInTxn int
}

// direct reports whether ingress messages to loop partition part may be
// delivered directly.
func (w *worker) direct(part int32) bool {
	g := w.gates[part]
	if g == nil || w.parts[part] == nil {
		return false
	}
	return g.routedInTxn == 0 && g.processed >= g.until
}
