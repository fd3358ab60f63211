package processor

import (
	"context"
	"slices"
	"time"
)

// standbyInterval is how long a standby waits between two catch-ups of
// its store: what a takeover reads is about this much of the owner's
// changelog writes.
const standbyInterval = 500 * time.Millisecond

// standbys keeps the standby partitions of one stream thread warm (see
// WithStandbys): for each, a goroutine holds the partition's local store
// (standbyOwner in the store set) and catches it up with the partition's
// changelogs, read_committed, from the offsets the store records, every
// standbyInterval. Catch-ups of all the processor's standbys run one or
// two at a time (Processor.standbySlots), through the process's client
// rather than the thread's, apart from the transaction cycle, which never
// sees a standby store: a partition that becomes the
// thread's own is handed over once its standby has stopped, and its
// recovery then reads only what the standby had not read yet.
type standbys struct {
	p      *Processor
	cl     cluster
	stores *storeSet
	thread int

	running map[int32]*standbyRun
	// ctx and pending are the context and the partitions of the standbys
	// set wants and start starts
	ctx     context.Context
	pending []int32
}

type standbyRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newStandbys(p *Processor, cl cluster, stores *storeSet, thread int) *standbys {
	return &standbys{p: p, cl: cl, stores: stores, thread: thread, running: map[int32]*standbyRun{}}
}

// standbyOwner is the store set owner of a thread's standby stores.
func standbyOwner(thread int) int { return -2 - thread }

// set makes parts the thread's standby partitions. A standby no longer
// wanted is stopped; its store goes to the thread if the thread now owns
// the partition (active), else it is released. New ones start under ctx
// at the next start.
func (sb *standbys) set(ctx context.Context, parts []int32, active map[int32]bool) {
	want := make(map[int32]bool, len(parts))
	for _, part := range parts {
		if !active[part] {
			want[part] = true
		}
	}
	for part, r := range sb.running {
		if want[part] {
			continue
		}
		r.cancel()
		<-r.done
		delete(sb.running, part)
		to := -1
		if active[part] {
			to = sb.thread
		}
		sb.stores.handOver(part, standbyOwner(sb.thread), to)
	}
	sb.ctx, sb.pending = ctx, nil
	for part := range want {
		if sb.running[part] == nil {
			sb.pending = append(sb.pending, part)
		}
	}
}

// start starts the standbys set added. It takes their stores if nobody
// holds them, before the thread's session closes the stores nobody holds:
// an in-memory store the thread just released keeps what it has.
func (sb *standbys) start() {
	for _, part := range sb.pending {
		rctx, cancel := context.WithCancel(sb.ctx)
		r := &standbyRun{cancel: cancel, done: make(chan struct{})}
		sb.running[part] = r
		st := sb.stores.tryAcquire(part, standbyOwner(sb.thread))
		go func() {
			defer close(r.done)
			sb.run(rctx, part, st)
		}()
	}
	sb.pending = nil
}

// stopAll stops every standby and releases their stores.
func (sb *standbys) stopAll() { sb.set(context.Background(), nil, nil) }

// parts returns the partitions the thread keeps standbys of (once
// started), sorted.
func (sb *standbys) parts() []int32 {
	out := make([]int32, 0, len(sb.running)+len(sb.pending))
	for part := range sb.running {
		out = append(out, part)
	}
	out = append(out, sb.pending...)
	slices.Sort(out)
	return out
}

// run keeps the standby store of part caught up until ctx ends.
func (sb *standbys) run(ctx context.Context, part int32, st *store) {
	log := sb.p.cfg.logger
	if st == nil {
		var err error
		if st, err = sb.stores.acquire(ctx, part, standbyOwner(sb.thread)); err != nil {
			if ctx.Err() == nil {
				log.Warn("standby: open local store", "partition", part, "err", err)
			}
			return
		}
	}
	log.Debug("standby started", "thread", sb.thread, "partition", part)
	failing := false
	for {
		select {
		case sb.p.standbySlots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var asides []aside
		n, err := sb.p.catchUp(ctx, sb.cl, st, part, &asides, true)
		<-sb.p.standbySlots
		if ctx.Err() != nil {
			return
		}
		sb.stores.addAsides(part, asides)
		sb.p.count(func(s *Stats) { s.StandbyRecords += n })
		switch {
		case err != nil && !failing:
			log.Warn("standby: catching up failed, trying again", "partition", part, "err", err)
			failing = true
		case err == nil && failing:
			log.Info("standby: catching up again", "partition", part)
			failing = false
		}
		select {
		case <-time.After(standbyInterval):
		case <-ctx.Done():
			return
		}
	}
}

// standbySlotsFor returns the semaphore of concurrent standby catch-ups.
func standbySlotsFor(threads int) chan struct{} { return make(chan struct{}, min(2, threads)) }
