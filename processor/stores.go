package processor

import (
	"context"
	"sync"
)

// storeSet holds the local stores of a processor's loop partitions for all
// its threads. A thread acquires the store of a partition it was given
// and releases those it no longer owns; a store stays open when released,
// so a partition that moves to another thread of the same process keeps
// it. A thread that acquires a store another thread still holds (its
// rebalance has not reached it yet) waits until it is released.
type storeSet struct {
	dir string

	mu     sync.Mutex
	stores map[int32]*heldStore
	freed  chan struct{} // closed and replaced whenever a store is released
}

type heldStore struct {
	st    *store
	owner int // the thread holding it; -1: none; standbyOwner(k): thread k's standby
	// asides are the table records a standby left out, for the recovery
	// of the partition's next owner in this process
	asides []aside
}

func newStoreSet(dir string) *storeSet {
	return &storeSet{dir: dir, stores: make(map[int32]*heldStore), freed: make(chan struct{})}
}

// acquire returns the store of loop partition part for thread owner,
// opening it if needed, and waits while another thread holds it.
func (ss *storeSet) acquire(ctx context.Context, part int32, owner int) (*store, error) {
	for {
		ss.mu.Lock()
		h := ss.stores[part]
		switch {
		case h == nil:
			st, err := openStore(ss.dir, part)
			if err != nil {
				ss.mu.Unlock()
				return nil, err
			}
			ss.stores[part] = &heldStore{st: st, owner: owner}
			ss.mu.Unlock()
			return st, nil
		case h.owner == -1 || h.owner == owner:
			h.owner = owner
			ss.mu.Unlock()
			return h.st, nil
		}
		freed := ss.freed
		ss.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// releaseExcept releases the stores thread owner holds, but those of the
// partitions it keeps.
func (ss *storeSet) releaseExcept(owner int, keep map[int32]bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	released := false
	for part, h := range ss.stores {
		if h.owner == owner && !keep[part] {
			h.owner = -1
			released = true
		}
	}
	if released {
		close(ss.freed)
		ss.freed = make(chan struct{})
	}
}

// closeUnowned closes the stores no thread holds.
func (ss *storeSet) closeUnowned() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for part, h := range ss.stores {
		if h.owner == -1 {
			h.st.close()
			delete(ss.stores, part)
		}
	}
}

// closeAll closes every store.
func (ss *storeSet) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for part, h := range ss.stores {
		h.st.close()
		delete(ss.stores, part)
	}
}

// tryAcquire returns the store of loop partition part for owner if nobody
// holds it (opening it if needed), else nil.
func (ss *storeSet) tryAcquire(part int32, owner int) *store {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	h := ss.stores[part]
	switch {
	case h == nil:
		st, err := openStore(ss.dir, part)
		if err != nil {
			return nil // acquire tries again and reports it
		}
		ss.stores[part] = &heldStore{st: st, owner: owner}
		return st
	case h.owner == -1 || h.owner == owner:
		h.owner = owner
		return h.st
	}
	return nil
}

// handOver gives the store of part that from holds to to (-1: releases
// it).
func (ss *storeSet) handOver(part int32, from, to int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	h := ss.stores[part]
	if h == nil || h.owner != from {
		return
	}
	h.owner = to
	if to == -1 {
		close(ss.freed)
		ss.freed = make(chan struct{})
	}
}

// addAsides keeps table records a standby of part left out.
func (ss *storeSet) addAsides(part int32, asides []aside) {
	if len(asides) == 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if h := ss.stores[part]; h != nil {
		h.asides = append(h.asides, asides...)
	}
}

// takeAsides returns and forgets the records standbys of part left out.
func (ss *storeSet) takeAsides(part int32) []aside {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	h := ss.stores[part]
	if h == nil {
		return nil
	}
	a := h.asides
	h.asides = nil
	return a
}
