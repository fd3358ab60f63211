package smoke

// Tracker keeps the state every function id must reach: the number of
// increments that the source commands tracked so far lead to, as
// upstream's FunctionStateTracker. It also keeps the longest chains of
// messages that lead to an increment, which bound how long the counts can
// take to settle.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	expected []int64
	chain    Chain
}

// Chain measures the messages between a source command and an increment
// it leads to: Messages counts every hop (Send and SendAfter), Delayed the
// SendAfter hops among them.
type Chain struct {
	Messages, Delayed int
}

// NewTracker returns a tracker for ids "0" to "ids-1", all expecting 0.
func NewTracker(ids int) *Tracker { return &Tracker{expected: make([]int64, ids)} }

// Track adds the increments of s. Increments of ids outside the tracker's
// range are ignored.
func (t *Tracker) Track(s SourceCommand) {
	walk(s.Target, s.Commands, Chain{}, func(id int32, c Chain) {
		if id >= 0 && int(id) < len(t.expected) {
			t.expected[id]++
		}
		t.chain.Messages = max(t.chain.Messages, c.Messages)
		t.chain.Delayed = max(t.chain.Delayed, c.Delayed)
	})
}

// Expected returns the count id must reach.
func (t *Tracker) Expected(id int) int64 { return t.expected[id] }

// Snapshot returns a copy of the expected counts, indexed by id.
func (t *Tracker) Snapshot() []int64 { return append([]int64(nil), t.expected...) }

// Total returns the sum of the expected counts.
func (t *Tracker) Total() int64 {
	var n int64
	for _, e := range t.expected {
		n += e
	}
	return n
}

// Longest returns the most messages and the most delayed messages on one
// path from a tracked source command to an increment (each maximum on its
// own path). Chains that lead to no increment do not count: they change no
// count, whenever and however often they arrive.
func (t *Tracker) Longest() Chain { return t.chain }

// Increments calls fn with the id of every increment that s leads to, once
// per increment. It walks the command tree with the id that runs each
// command, as upstream's FunctionStateTracker: Send and SendAfter run their
// commands at their target, an AsyncOperation's resolved commands run where
// it ran; the other commands (CancelSendAfter among them) change no count.
// A SendAfter with a cancellation token carries no commands when the
// generator makes it, so the counts are the same whether its cancellation
// or its delivery comes first.
func Increments(s SourceCommand, fn func(id int32)) {
	walk(s.Target, s.Commands, Chain{}, func(id int32, _ Chain) { fn(id) })
}

func walk(cur int32, cs Commands, chain Chain, fn func(id int32, c Chain)) {
	for _, c := range cs {
		switch c := c.(type) {
		case Increment:
			fn(cur, chain)
		case Send:
			walk(c.Target, c.Commands, Chain{Messages: chain.Messages + 1, Delayed: chain.Delayed}, fn)
		case SendAfter:
			walk(c.Target, c.Commands, Chain{Messages: chain.Messages + 1, Delayed: chain.Delayed + 1}, fn)
		case AsyncOperation:
			walk(cur, c.ResolvedCommands, chain, fn)
		}
	}
}
