package processor

// gate decides when ingress records may invoke functions of a loop
// partition directly, in the ingress record's transaction, instead of
// taking a hop through the loop topic. Ingress records of one ingress
// partition to one address must stay in order, so direct delivery waits
// until the partition has processed every loop record that might carry an
// earlier such record: the backlog found at assignment (records routed by
// a previous owner) and everything this session routed itself.
type gate struct {
	// until is the last loop offset that must be processed first; -1: none
	until int64
	// processed is the highest loop offset processed
	processed int64
}

// direct reports whether messages of the transaction t to loop partition
// part may be delivered directly: the partition is owned here, nothing was
// routed to it in t (those offsets are known only after the commit), and
// everything routed to it before is processed.
func (s *session) direct(t *txn, part int32) bool {
	pp := s.parts[part]
	if pp == nil {
		return false
	}
	return t.routed[part] == 0 && pp.gate.processed >= pp.gate.until
}
