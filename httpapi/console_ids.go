package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/stateloop/stateloop/functions"
)

// Bounds of GET /v1/console/ids.
const (
	defaultIDsPage = 50
	maxIDsPage     = 500
)

// consoleIDsInfo is the body of GET /v1/console/ids/{namespace}/{name}.
type consoleIDsInfo struct {
	Type   string   `json:"type"`
	Table  string   `json:"table"`
	Prefix string   `json:"prefix,omitempty"`
	After  string   `json:"after,omitempty"`
	IDs    []string `json:"ids"`   // in byte order, at most n
	Total  int      `json:"total"` // ids with state (and the prefix), on every page
	Next   string   `json:"next,omitempty"`
}

// consoleIDs answers a page of the ids of a function type that have
// state, in byte order, from the view of its table that state lookups use
// (views.go): ?n= ids (default 50, at most 500) after ?after= (the last
// id of the previous page, its "next"), of those starting with ?prefix=.
// A type without a table gets 404.
func (s *Server) consoleIDs(w http.ResponseWriter, r *http.Request) {
	fn, ok := s.functionType(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	n := defaultIDsPage
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxIDsPage {
			fail(w, http.StatusBadRequest, fmt.Sprintf("n=%s: want a number from 1 to %d", v, maxIDsPage))
			return
		}
	}
	prefix, after := q.Get("prefix"), q.Get("after")
	tv, ok := s.runningView(w, r, fn)
	if !ok {
		return
	}
	defer s.releaseView(tv)
	it, err := tv.view.Iterator()
	if err != nil {
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the table of %s: %v; retry later", fn, err))
		return
	}
	defer it.Release()
	var ids []string
	for it.Next() {
		if id := it.Key(); strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	if err := it.Err(); err != nil {
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the table of %s: %v; retry later", fn, err))
		return
	}
	slices.Sort(ids)
	info := consoleIDsInfo{Type: string(fn), Table: string(s.cfg.Topology.TableTopic(fn)), Prefix: prefix, After: after, Total: len(ids)}
	i, found := slices.BinarySearch(ids, after)
	if found && after != "" {
		i++
	}
	info.IDs = ids[i:min(i+n, len(ids))]
	if i+n < len(ids) {
		info.Next = info.IDs[len(info.IDs)-1]
	}
	writeJSON(w, http.StatusOK, info)
}

// functionType reads the function type of a request's path
// ({namespace}/{name}); on a bad one, or one the application does not
// have, it answers 400 or 404 and returns false.
func (s *Server) functionType(w http.ResponseWriter, r *http.Request) (functions.TypeName, bool) {
	fn, err := functions.ParseTypeName(r.PathValue("namespace") + "/" + r.PathValue("name"))
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Sprintf("bad function type: %v", err))
		return "", false
	}
	if !s.cfg.Topology.HasFunction(fn) {
		fail(w, http.StatusNotFound, fmt.Sprintf("function type %s is not a function of application %s", fn, s.cfg.Topology.App))
		return "", false
	}
	return fn, true
}
