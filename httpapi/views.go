package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
)

// DefaultMaxViews is the default of Config.MaxViews.
const DefaultMaxViews = 8

// recoverWait bounds how long a state request waits for a new view to
// read its table.
const recoverWait = 10 * time.Second

// errNoTable: the function type's table topic does not exist.
var errNoTable = errors.New("no table")

// errTooManyViews: every open view is in use and none may be added.
var errTooManyViews = errors.New("too many views")

// tableView is an open view of one function type's table, in Server.views.
type tableView struct {
	fn    functions.TypeName
	ready chan struct{} // closed once view or err is set
	view  *gokaview.View
	err   error
	stop  context.CancelFunc
	done  chan struct{} // closed once the view has stopped and released its clients
	users int           // requests using it; guarded by Server.mu
	used  uint64        // Server.viewClock at its last use; guarded by Server.mu
}

// state answers the committed state of an address, read from its
// function type's table through a view (read_committed) that follows the
// table from the first request on. A type whose table does not exist gets
// 404, and nothing is created.
func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	target, ok := s.address(w, r)
	if !ok {
		return
	}
	tv, ok := s.runningView(w, r, target.Type)
	if !ok {
		return
	}
	defer s.releaseView(tv)
	v, err := tv.view.Get(target.ID)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the state of %s: %v", target, err))
		return
	}
	st, _ := v.(gokaview.State)
	if len(st) == 0 {
		fail(w, http.StatusNotFound, fmt.Sprintf("%s has no state", target))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"address": target.String(), "state": gokaview.Display(st)})
}

// runningView returns the view of fn's table once it has read the table,
// for a request; release it with releaseView. If there is none it answers
// the request (404 when the table does not exist, 503 when it cannot be
// read now) and returns false.
func (s *Server) runningView(w http.ResponseWriter, r *http.Request, fn functions.TypeName) (*tableView, bool) {
	tv, err := s.acquireView(r.Context(), fn)
	switch {
	case errors.Is(err, errNoTable):
		fail(w, http.StatusNotFound, fmt.Sprintf("function type %s has no state yet: its table topic %s does not exist "+
			"(the application creates it when the type is first invoked)", fn, s.cfg.Topology.TableTopic(fn)))
		return nil, false
	case errors.Is(err, errTooManyViews):
		w.Header().Set("Retry-After", "1")
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("the tables of %d function types are being read right now, the most this listener keeps open; retry in a moment", s.cfg.MaxViews))
		return nil, false
	case err != nil:
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the table of %s: %v; retry later", fn, err))
		return nil, false
	}
	timer := time.NewTimer(recoverWait)
	defer timer.Stop()
	select {
	case <-tv.view.WaitRunning():
		return tv, true
	case <-tv.done:
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the table of %s stopped; retry in a moment", fn))
		return nil, false
	case <-timer.C:
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("still reading the table of %s; retry in a moment", fn))
		return nil, false
	case <-r.Context().Done():
	}
	s.releaseView(tv)
	return nil, false
}

// acquireView returns the running view of a function type's table,
// opening it first if need be; release it with releaseView. At most
// Config.MaxViews views are open: opening one more stops the least
// recently used view that no request is using, and if every view is in
// use it returns errTooManyViews. It returns errNoTable, and opens
// nothing, if the table does not exist.
func (s *Server) acquireView(ctx context.Context, fn functions.TypeName) (*tableView, error) {
	s.mu.Lock()
	tv := s.views[fn]
	if tv == nil {
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return nil, errors.New("the listener is stopping")
		}
		s.mu.Unlock()
		// Ask first, without a view: a request for a type without a table
		// then costs one metadata request on a shared client.
		if err := s.tableExists(fn); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if tv = s.views[fn]; tv == nil {
			if len(s.views) >= s.cfg.MaxViews && !s.evictView() {
				s.mu.Unlock()
				return nil, errTooManyViews
			}
			tv = &tableView{fn: fn, ready: make(chan struct{}), done: make(chan struct{})}
			s.views[fn] = tv
			s.viewsRunning.Add(1)
			go s.runView(tv)
		}
	}
	tv.users++
	s.viewClock++
	tv.used = s.viewClock
	s.mu.Unlock()

	select {
	case <-tv.ready:
	case <-ctx.Done():
		s.releaseView(tv)
		return nil, ctx.Err()
	}
	if tv.err != nil {
		s.releaseView(tv)
		return nil, tv.err
	}
	return tv, nil
}

// releaseView ends a request's use of a view.
func (s *Server) releaseView(tv *tableView) {
	s.mu.Lock()
	tv.users--
	s.mu.Unlock()
}

// evictView stops the least recently used view that no request uses and
// reports whether there was one. s.mu is held.
func (s *Server) evictView() bool {
	var lru *tableView
	for _, tv := range s.views {
		// (stop is nil while the view is being opened)
		if tv.users == 0 && tv.stop != nil && (lru == nil || tv.used < lru.used) {
			lru = tv
		}
	}
	if lru == nil {
		return false
	}
	delete(s.views, lru.fn)
	lru.stop()
	return true
}

// runView opens the view of tv and runs it until it is evicted, fails or
// the server closes; then it releases the view's Kafka clients and takes
// tv out of s.views.
func (s *Server) runView(tv *tableView) {
	defer s.viewsRunning.Done()
	defer close(tv.done)
	view, err := gokaview.NewView(s.cfg.Brokers, s.cfg.Topology, tv.fn, goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.mu.Lock()
	tv.view, tv.stop = view, cancel
	switch {
	case errors.Is(err, gokaview.ErrNoTable):
		tv.err = errNoTable // deleted since tableExists looked
	case err != nil:
		tv.err = err
	}
	if tv.err != nil && s.views[tv.fn] == tv {
		delete(s.views, tv.fn)
	}
	s.mu.Unlock()
	close(tv.ready)
	if tv.err != nil {
		return
	}
	if err := view.Run(ctx); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Warn("table view stopped", "function_type", tv.fn, "err", err)
	}
	s.mu.Lock()
	if s.views[tv.fn] == tv {
		delete(s.views, tv.fn)
	}
	s.mu.Unlock()
}

// tableExists returns nil if the table topic of fn exists, errNoTable if
// not, asking Kafka with a metadata request that creates nothing.
func (s *Server) tableExists(fn functions.TypeName) error {
	client, err := s.consoleClient()
	if err != nil {
		return err
	}
	topic := string(s.cfg.Topology.TableTopic(fn))
	counts, err := partitionCounts(client, []string{topic})
	if err != nil {
		return err
	}
	if _, ok := counts[topic]; !ok {
		return errNoTable
	}
	return nil
}
