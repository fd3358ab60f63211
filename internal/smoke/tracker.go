package smoke

// Tracker keeps the state every function id must reach: the number of
// increments that the source commands tracked so far lead to, as
// upstream's FunctionStateTracker.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	expected []int64
}

// NewTracker returns a tracker for ids "0" to "ids-1", all expecting 0.
func NewTracker(ids int) *Tracker { return &Tracker{expected: make([]int64, ids)} }

// Track adds the increments of s. Increments of ids outside the tracker's
// range are ignored.
func (t *Tracker) Track(s SourceCommand) {
	Increments(s, func(id int32) {
		if id >= 0 && int(id) < len(t.expected) {
			t.expected[id]++
		}
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

// Increments calls fn with the id of every increment that s leads to, once
// per increment. It walks the command tree with the id that runs each
// command: Send and SendAfter run their commands at their target, an
// AsyncOperation's resolved commands run where it ran; the other commands
// change no count.
func Increments(s SourceCommand, fn func(id int32)) {
	walk(s.Target, s.Commands, fn)
}

func walk(cur int32, cs Commands, fn func(id int32)) {
	for _, c := range cs {
		switch c := c.(type) {
		case Increment:
			fn(cur)
		case Send:
			walk(c.Target, c.Commands, fn)
		case SendAfter:
			walk(c.Target, c.Commands, fn)
		case AsyncOperation:
			walk(cur, c.ResolvedCommands, fn)
		}
	}
}
