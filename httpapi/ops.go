package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/ops"
	"github.com/stateloop/stateloop/internal/wire"
)

// The operator's API: the operations of `stateloop dlq|state|timers|
// describe` over HTTP, behind the listener's access rules (access.go).
// Changes go through the runtime as control records (internal/ops), and
// each answer says what the runtime did:
//
//	GET    /v1/describe                                   the application: instances, functions, partitions, lag
//	GET    /v1/dead-letters?type=&id=&reason=&partition=&from=&to=&replayed=&last=
//	GET    /v1/dead-letters/{partition}/{offset}
//	POST   /v1/dead-letters/replay                        {"refs":[...]}, a filter or {"all":true}; "dry_run"
//	PUT    /v1/state/{namespace}/{name}/{id}/{state}      the body is the new value
//	DELETE /v1/state/{namespace}/{name}/{id}/{state}      one value
//	DELETE /v1/state/{namespace}/{name}/{id}              every value
//	GET    /v1/timers?type=&id=&to=                       pending delayed messages
//	DELETE /v1/timers/{namespace}/{name}/{id}/{token}     cancel one
//	DELETE /v1/timers/{namespace}/{name}/{id}             cancel every one of the address
func (s *Server) opsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/describe", s.describe)
	mux.HandleFunc("GET /v1/dead-letters", s.listDeadLetters)
	mux.HandleFunc("GET /v1/dead-letters/{partition}/{offset}", s.showDeadLetter)
	mux.HandleFunc("POST /v1/dead-letters/replay", s.replayDeadLetters)
	mux.HandleFunc("PUT /v1/state/{namespace}/{name}/{id}/{state}", s.setState)
	mux.HandleFunc("DELETE /v1/state/{namespace}/{name}/{id}/{state}", s.deleteState)
	mux.HandleFunc("DELETE /v1/state/{namespace}/{name}/{id}", s.deleteState)
	mux.HandleFunc("GET /v1/timers", s.listTimers)
	mux.HandleFunc("DELETE /v1/timers/{namespace}/{name}/{id}/{token}", s.cancelTimers)
	mux.HandleFunc("DELETE /v1/timers/{namespace}/{name}/{id}", s.cancelTimers)
}

// opsWait bounds how long a change waits for the runtime's answer.
const opsWait = 20 * time.Second

// opsClient returns the server's operator client, made on first use: it
// reads with the console's client, writes with the server's producer, and
// gets its answers from the server's reply reader (Run).
func (s *Server) opsClient() (*ops.Client, error) {
	reader, err := s.consoleClient()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops == nil {
		s.ops = ops.New(ops.Kafka{Reader: reader, Producer: s.producer}, s.cfg.Topology, s.cfg.Instance)
	}
	return s.ops, nil
}

// withOps answers 503 when Kafka cannot be reached, else calls f with the
// operator client and a context bounded for a change.
func (s *Server) withOps(w http.ResponseWriter, r *http.Request, f func(ctx context.Context, c *ops.Client)) {
	c, err := s.opsClient()
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opsWait+5*time.Second)
	defer cancel()
	f(ctx, c)
}

// opsFail answers the error of a change: 504 when the runtime did not
// answer in time (the change is written and will be applied), 422 when it
// refused the change or the value is not one of its type, 503 when it
// could not be written.
func opsFail(w http.ResponseWriter, err error) {
	var refused *ops.RefusedError
	switch {
	case errors.Is(err, ops.ErrNoAnswer):
		fail(w, http.StatusGatewayTimeout, err.Error())
	case errors.As(err, &refused), errors.Is(err, ops.ErrBadValue):
		fail(w, http.StatusUnprocessableEntity, err.Error())
	default:
		fail(w, http.StatusServiceUnavailable, err.Error())
	}
}

func (s *Server) describe(w http.ResponseWriter, r *http.Request) {
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		d, err := c.Describe(ctx)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, fmt.Sprintf("describing the application: %v", err))
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
}

// deadLettersInfo is the body of GET /v1/dead-letters.
type deadLettersInfo struct {
	Topic       string               `json:"topic"`
	DeadLetters []ops.DeadLetterView `json:"dead_letters"`
	Errors      []string             `json:"errors,omitempty"`
}

// deadLetterFilter reads a filter from query parameters (or, for
// replay, the request's JSON): type, id, reason, partition, from, to,
// replayed.
func deadLetterFilter(get func(string) string) (ops.Filter, error) {
	f := ops.Filter{Type: functions.TypeName(get("type")), ID: get("id"), Reason: get("reason"), Partition: ops.AnyPartition, To: -1, Replayed: get("replayed")}
	var errs []error
	num := func(name string, bits int, set func(int64)) {
		if v := get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, bits)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s=%s: want a number, 0 or more", name, v))
				return
			}
			set(n)
		}
	}
	num("partition", 32, func(n int64) { f.Partition = int32(n) })
	num("from", 64, func(n int64) { f.From = n })
	num("to", 64, func(n int64) { f.To = n })
	if f.Partition == ops.AnyPartition && (get("from") != "" || get("to") != "") {
		errs = append(errs, errors.New("from and to are offsets of one partition: give partition too"))
	}
	if f.Type != "" {
		if _, err := functions.ParseTypeName(string(f.Type)); err != nil {
			errs = append(errs, fmt.Errorf("type=%s: %v", f.Type, err))
		}
	}
	if f.Replayed != "" && f.Replayed != "yes" && f.Replayed != "no" {
		errs = append(errs, fmt.Errorf("replayed=%s: want yes or no", f.Replayed))
	}
	return f, errors.Join(errs...)
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := deadLetterFilter(q.Get)
	last := 0
	if v := q.Get("last"); v != "" && err == nil {
		if last, err = strconv.Atoi(v); err != nil || last < 1 || last > maxDeadLetters {
			err = fmt.Errorf("last=%s: want a number from 1 to %d", v, maxDeadLetters)
		}
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		dls, errs := c.DeadLetters(ctx, f, last)
		info := deadLettersInfo{Topic: string(s.cfg.Topology.DLQTopic()), DeadLetters: []ops.DeadLetterView{}}
		for i := range dls {
			info.DeadLetters = append(info.DeadLetters, dls[i].View(s.cfg.Topology))
		}
		for _, e := range errs {
			info.Errors = append(info.Errors, e.Error())
		}
		writeJSON(w, http.StatusOK, info)
	})
}

func (s *Server) showDeadLetter(w http.ResponseWriter, r *http.Request) {
	p, off, err := wire.ParseDeadLetterRef(r.PathValue("partition") + "/" + r.PathValue("offset"))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		d, err := c.DeadLetter(ctx, p, off)
		if err != nil {
			fail(w, http.StatusNotFound, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, d.View(s.cfg.Topology))
	})
}

// replayRequest is the body of POST /v1/dead-letters/replay: the dead
// letters by ref ("partition/offset"), or a filter (the list's), or All
// for every one; one of the three.
type replayRequest struct {
	Refs      []string `json:"refs"`
	Type      string   `json:"type"`
	ID        string   `json:"id"`
	Reason    string   `json:"reason"`
	Partition *int32   `json:"partition"`
	From      *int64   `json:"from"`
	To        *int64   `json:"to"`
	Replayed  string   `json:"replayed"`
	All       bool     `json:"all"`
	DryRun    bool     `json:"dry_run"`
}

// replayResult is one dead letter's outcome.
type replayResult struct {
	Ref     string `json:"ref"`
	Address string `json:"address,omitempty"`
	Status  string `json:"status"` // see ops.ReplayOutcome
	Error   string `json:"error,omitempty"`
}

func (s *Server) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	var req replayRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		fail(w, http.StatusBadRequest, "the body: "+err.Error()+`; send JSON like {"refs":["0/17"]} or {"type":"ns/name","reason":"timeout","dry_run":true}`)
		return
	}
	get := func(name string) string {
		switch name {
		case "type":
			return req.Type
		case "id":
			return req.ID
		case "reason":
			return req.Reason
		case "partition":
			return optional(req.Partition)
		case "from":
			return optional(req.From)
		case "to":
			return optional(req.To)
		case "replayed":
			return req.Replayed
		}
		return ""
	}
	f, err := deadLetterFilter(get)
	if err == nil && len(req.Refs) > 0 && (!f.IsZero() || req.All) {
		err = errors.New("give refs, a filter or \"all\", not several")
	}
	if err == nil && req.All && !f.IsZero() {
		err = errors.New(`"all" replays every dead letter not replayed yet: leave out the filter, or "all"`)
	}
	if err == nil && len(req.Refs) == 0 && f.IsZero() && !req.All {
		err = errors.New(`no dead letters chosen: give "refs", a filter (type, id, reason, partition with from and to), or "all": true`)
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		var dls []ops.DeadLetter
		var errs []error
		if len(req.Refs) > 0 {
			for _, ref := range req.Refs {
				p, off, err := wire.ParseDeadLetterRef(ref)
				if err != nil {
					fail(w, http.StatusBadRequest, err.Error())
					return
				}
				d, err := c.DeadLetter(ctx, p, off)
				if err != nil {
					fail(w, http.StatusNotFound, err.Error())
					return
				}
				dls = append(dls, d)
			}
		} else {
			dls, errs = c.DeadLetters(ctx, f, 0)
		}
		out := struct {
			Results []replayResult `json:"results"`
			Errors  []string       `json:"errors,omitempty"`
		}{Results: []replayResult{}}
		for _, e := range errs {
			out.Errors = append(out.Errors, e.Error())
		}
		for _, o := range c.Replay(ctx, dls, req.DryRun, opsWait, nil) {
			rr := replayResult{Ref: o.DeadLetter.Ref(), Status: o.Status}
			if a := o.DeadLetter.Address; a != nil {
				rr.Address = a.String()
			}
			if o.Err != nil {
				rr.Error = o.Err.Error()
			}
			out.Results = append(out.Results, rr)
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func optional[T int32 | int64](p *T) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(int64(*p), 10)
}

// setState sets one state value of an address to the request's body:
// text for StateFun's built-in types (42, true), the value's bytes for
// any other type. Its type is the Stateloop-Type header, else the
// declared type, else the current value's.
func (s *Server) setState(w http.ResponseWriter, r *http.Request) {
	target, ok := s.address(w, r)
	if !ok {
		return
	}
	var typ functions.TypeName
	if v := r.Header.Get(TypeHeader); v != "" {
		t, err := functions.ParseTypeName(v)
		if err != nil {
			fail(w, http.StatusBadRequest, fmt.Sprintf("%s %q: %v", TypeHeader, v, err))
			return
		}
		typ = t
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxBody))
		return
	}
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		res, err := c.SetState(ctx, target, []ops.StateValue{{Name: r.PathValue("state"), Type: typ, Text: body}}, opsWait)
		if err != nil {
			opsFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ops.StateResultView(res))
	})
}

// deleteState deletes one state value of an address, or all of them.
func (s *Server) deleteState(w http.ResponseWriter, r *http.Request) {
	target, ok := s.address(w, r)
	if !ok {
		return
	}
	edit := wire.StateEdit{DeleteAll: true}
	if name := r.PathValue("state"); name != "" {
		edit = wire.StateEdit{Delete: []string{name}}
	}
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		res, err := c.EditState(ctx, target, edit, opsWait)
		if err != nil {
			opsFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ops.StateResultView(res))
	})
}

// timersInfo is the body of GET /v1/timers and of a cancel.
type timersInfo struct {
	Timers []ops.TimerView `json:"timers"`
	Errors []string        `json:"errors,omitempty"`
}

func timersJSON(ts []ops.Timer, errs []error) timersInfo {
	info := timersInfo{Timers: []ops.TimerView{}}
	for i := range ts {
		info.Timers = append(info.Timers, ts[i].View())
	}
	for _, e := range errs {
		info.Errors = append(info.Errors, e.Error())
	}
	return info
}

// listTimers lists the pending delayed messages: of the senders of a
// function type (?type=) or one address (?type=&id=), and to a target
// (?to=ns/name or ns/name/id).
func (s *Server) listTimers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := ops.TimerFilter{Type: functions.TypeName(q.Get("type")), ID: q.Get("id")}
	var errs []error
	if f.ID != "" && f.Type == "" {
		errs = append(errs, errors.New("id= needs type= too"))
	}
	if f.Type != "" {
		if _, err := functions.ParseTypeName(string(f.Type)); err != nil {
			errs = append(errs, fmt.Errorf("type=%s: %v", f.Type, err))
		}
	}
	if to := q.Get("to"); to != "" {
		var err error
		if f.ToType, f.ToID, err = ops.ParseTarget(to); err != nil {
			errs = append(errs, fmt.Errorf("to=%w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		writeJSON(w, http.StatusOK, timersJSON(c.Timers(ctx, f)))
	})
}

// cancelTimers cancels a delayed message of an address by its token, or
// all of the address's.
func (s *Server) cancelTimers(w http.ResponseWriter, r *http.Request) {
	target, ok := s.address(w, r)
	if !ok {
		return
	}
	tok := r.PathValue("token")
	s.withOps(w, r, func(ctx context.Context, c *ops.Client) {
		var tokens []string
		if tok != "" {
			tokens = []string{tok}
		}
		ts, err := c.CancelTimers(ctx, target, tokens, tok == "", opsWait)
		if err != nil {
			opsFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, timersJSON(ts, nil))
	})
}
