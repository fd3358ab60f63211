package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/ops"
)

// consoleSendRequest is the body of POST /v1/console/send/...: a message
// as people type it.
type consoleSendRequest struct {
	Type  string `json:"type"`  // the message's type name
	Value string `json:"value"` // text, parsed by the type (codec.ParseText)
}

// consoleReply is the body of a send that got its reply.
type consoleReply struct {
	Address   string `json:"address"`
	Type      string `json:"type"`
	Value     any    `json:"value"` // shown by its type (codec.Display)
	Truncated bool   `json:"truncated,omitempty"`
	Replier   string `json:"replier,omitempty"`
}

// consoleSend sends the console's message form: the value typed as text
// for the type given (42 for io.statefun.types/int, JSON for a JSON
// type) is encoded as its type is (codec.ParseText) and sent as POST
// /v1/functions/{namespace}/{name}/{id} sends a body, ?wait= included.
// The answer is POST /v1/functions's, but a reply comes as JSON, its
// value shown by its type, since a page cannot decode a protobuf.
func (s *Server) consoleSend(w http.ResponseWriter, r *http.Request) {
	var req consoleSendRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*s.cfg.MaxBody+1024))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "the body: "+err.Error()+`; send JSON like {"type":"io.statefun.types/string","value":"hello"}`)
		return
	}
	t, err := functions.ParseTypeName(req.Type)
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Sprintf("message type %q: %v", req.Type, err))
		return
	}
	body, err := codec.ParseText(string(t), []byte(req.Value))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	fwd := r.Clone(r.Context())
	fwd.Header.Set(TypeHeader, string(t))
	// The body is the message as it goes on the wire now, not the page's
	// JSON; the reply is wanted on the wire too (decoded below).
	fwd.Header.Set("Content-Type", "application/octet-stream")
	fwd.Header.Del("Accept")
	fwd.Body = io.NopCloser(bytes.NewReader(body))
	fwd.ContentLength = int64(len(body))
	fwd.Header.Set("Content-Length", strconv.Itoa(len(body)))
	rec := &sendRecorder{ResponseWriter: w, header: make(http.Header)}
	s.send(rec, fwd)
	if rec.status == http.StatusOK && rec.header.Get(TypeHeader) != "" {
		typ := rec.header.Get(TypeHeader)
		v, truncated := ops.Display(typ, rec.body.Bytes())
		writeJSON(w, http.StatusOK, consoleReply{Address: fwd.PathValue("namespace") + "/" + fwd.PathValue("name") + "/" + fwd.PathValue("id"),
			Type: typ, Value: v, Truncated: truncated, Replier: rec.header.Get("Stateloop-Replier")})
		return
	}
	if rec.status == 0 { // the client went away
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// sendRecorder keeps the answer of the send handler for consoleSend. It
// unwraps to the connection's writer, so the handler can extend the
// connection's deadlines for ?wait=.
type sendRecorder struct {
	http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *sendRecorder) Header() http.Header { return r.header }

func (r *sendRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *sendRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *sendRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
