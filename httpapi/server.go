// Package httpapi is stateloop's HTTP listener: an ingress that sends a
// request body as a message to a function address (and can wait for the
// function's reply), the operator's API, the web console, and health
// checks.
//
//	POST /v1/functions/{namespace}/{name}/{id}   send a message; ?wait=5s waits for the reply
//	GET  /v1/state/{namespace}/{name}/{id}        the committed state of an address
//	GET  /metrics                                 Prometheus metrics
//	GET  /healthz                                 the process is up
//	GET  /readyz                                  the processor owns and has recovered its partitions
//	POST or PUT /{namespace}/{name}/{id}          with Config.PlaygroundPaths: StateFun playground's ingress, as POST /v1/functions/...
//
// A message's type is the Stateloop-Type header, or a Content-Type of
// application/vnd.<type name>; its body is the message's bytes, except
// that a message of a built-in type (io.statefun.types/string, int, long,
// bool, float, double) sent with Content-Type application/json is JSON,
// and the reply to a request that sent or accepts JSON is JSON when it is
// of a built-in type (json.go).
//
// The operator's API (ops.go: dead letters and their replay, state
// edits, delayed messages, describe) and the console (console.go) have
// routes of their own.
//
// A message is written to the application's loop topic before the
// response, with the HTTP instance as its caller, so a function answers
// with ctx.Reply (or, in a remote SDK function, by sending a message to
// its caller). Replies travel through the topic <app>-replies, in the
// partition of the HTTP instance's id, and are read read_committed: a
// reply is returned only once the function's invocation has committed.
//
// Access (access.go): /healthz and /readyz answer anyone; with
// Config.AllowedHosts other Host names are refused; requests that a
// browser sends for another site's page are refused; with Config.Token
// every other request but the console page needs "Authorization: Bearer
// <token>". Serve adds timeouts and a connection cap (listener.go). The
// listener only reads and writes topics the application has: it never
// creates one. docs/operations.md has the security model.
package httpapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/ops"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// TypeHeader is the request and response header that carries a message's
// type name. A request may give it as Content-Type
// "application/vnd.<type name>" instead (as StateFun's playground ingress).
const TypeHeader = "Stateloop-Type"

// maxRemembered bounds the answers to idempotent requests an instance
// keeps in memory to answer retries without writing again.
const maxRemembered = 100_000

// Defaults of Config.
const (
	DefaultMaxBody = 1 << 20
	DefaultMaxWait = 60 * time.Second
)

// Config configures a Server.
type Config struct {
	Brokers  []string
	Topology topology.Topology
	// Instance names this HTTP instance in the callers of its messages;
	// replies are routed by it. It must be unique among running instances.
	Instance string
	// MaxBody bounds a request body (DefaultMaxBody if 0).
	MaxBody int64
	// MaxWait bounds ?wait= (DefaultMaxWait if 0).
	MaxWait time.Duration
	// Ready reports whether the processor is ready, for /readyz; nil
	// means always.
	Ready func() bool
	// Metrics, if set, is served on /metrics in Prometheus's format.
	Metrics prometheus.Gatherer
	// Token, if set, is the bearer token every request needs ("Authorization:
	// Bearer <Token>"), except /healthz, /readyz, the console page and its
	// files, and /metrics with OpenMetrics. It must not contain white
	// space. See the access rules in access.go and docs/operations.md.
	Token       string
	OpenMetrics bool
	// AllowedHosts, if set, are the host names (without port) a request's
	// Host header may name; others are refused. Set it to LoopbackHosts
	// (and the names a local reverse proxy passes on) on a loopback
	// listener, against DNS rebinding.
	AllowedHosts []string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout and
	// MaxConns are the limits of Serve (DefaultReadHeaderTimeout and so on
	// if 0). ReadTimeout bounds reading a whole request, its body
	// included; WriteTimeout bounds the time from the end of its header to
	// the end of the answer. A request with ?wait= has its own bound
	// instead of both: the wait plus WriteTimeout.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxConns          int
	// PlaygroundPaths serves StateFun playground's ingress paths too:
	// POST or PUT /{namespace}/{name}/{id} sends a message as POST
	// /v1/functions/{namespace}/{name}/{id} does (for a module.yaml with
	// io.statefun.playground.v1/ingress).
	PlaygroundPaths bool
	// MaxViews bounds the function types whose tables the state requests
	// keep open views of (DefaultMaxViews if 0). Each view follows its
	// table and holds it in memory; the least recently used one is closed
	// to open another.
	MaxViews int
	Logger   *slog.Logger
	// TraceContext, if set, passes a request's W3C traceparent and
	// tracestate headers on to its message's loop record, so that the
	// processor's trace of the message continues the caller's. Set it when
	// the processor traces (processor.WithTracerProvider); off, nothing
	// of the request's headers reaches Kafka.
	TraceContext bool
}

// The bounds of the trace context headers passed on: W3C Trace Context's
// traceparent of version 00 is 55 characters, and a tracestate of 512
// is what the spec asks to propagate. Longer ones are left out.
const (
	maxTraceParent = 256
	maxTraceState  = 512
)

// Server serves the HTTP API. Create it with New and start its reply
// reader with Run.
type Server struct {
	cfg      Config
	client   sarama.Client
	producer sarama.SyncProducer
	parts    int32

	// ctx lasts from New to Close; the views and the console client live
	// in it
	ctx    context.Context
	cancel context.CancelFunc

	// replying is closed once Run reads the replies partition; a request
	// that waits for its reply writes its message only then, since Run
	// starts at the partition's end (closeReplying closes it once)
	replying      chan struct{}
	closeReplying sync.Once

	mu      sync.Mutex
	waiters map[string]chan wire.Envelope
	// accepted remembers the answers to requests with an Idempotency-Key
	accepted map[string]sendResult
	console  sarama.Client // the console's own client (console_kafka.go), made on first use
	ops      *ops.Client   // the operator's client (ops.go), made on first use
	rates    rateHistory   // the console's samples of the metrics (console_rates.go)
	http     *http.Server  // made by Serve (listener.go)
	// views are the open views of tables, by function type (views.go)
	views        map[functions.TypeName]*tableView
	viewClock    uint64
	viewsRunning sync.WaitGroup
}

// New connects to Kafka and returns a server; call Close when done.
func New(cfg Config) (*Server, error) {
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.MaxViews <= 0 {
		cfg.MaxViews = DefaultMaxViews
	}
	cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if strings.IndexFunc(cfg.Token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, errors.New("httpapi: the token contains white space or control characters; use letters, digits and punctuation")
	}
	if cfg.Instance == "" || strings.Contains(cfg.Instance, "/") {
		return nil, fmt.Errorf("httpapi: instance %q: want a non-empty name without '/'", cfg.Instance)
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Net.MaxOpenRequests = 1
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	// The processor creates the application's topics; writing to or reading
	// from one must not create it with the broker's defaults first.
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("httpapi: connect to Kafka at %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("httpapi: producer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, client: client, producer: producer, parts: cfg.Topology.PartitionCount(), ctx: ctx, cancel: cancel,
		waiters: make(map[string]chan wire.Envelope), views: make(map[functions.TypeName]*tableView),
		accepted: make(map[string]sendResult), replying: make(chan struct{})}, nil
}

// Close stops the table views and releases every Kafka client. Stop
// serving requests first.
func (s *Server) Close() error {
	s.cancel()
	s.viewsRunning.Wait()
	perr := s.producer.Close()
	return errors.Join(perr, s.client.Close())
}

// Run reads the replies to this instance's requests until ctx ends. It
// starts at the end of the replies partition: replies to requests of an
// earlier run of the instance are not wanted. Until the processor has
// created the replies topic it waits for it.
func (s *Server) Run(ctx context.Context) error {
	topic := string(s.cfg.Topology.RepliesTopic())
	part := processor.PartitionFor(s.cfg.Instance, s.parts)
	// the processor may still be creating the topic
	if err := kafkaread.WaitReady(ctx, s.client, topic); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("httpapi: replies topic %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(s.client)
	if err != nil {
		return fmt.Errorf("httpapi: consumer: %w", err)
	}
	defer consumer.Close()
	var pc sarama.PartitionConsumer
	for logged := false; ; logged = true {
		pc, err = consumer.ConsumePartition(topic, part, sarama.OffsetNewest)
		if err == nil {
			break
		}
		if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return fmt.Errorf("httpapi: read replies from %s/%d: %w", topic, part, err)
		}
		if !logged {
			s.cfg.Logger.Info("waiting for the replies topic; the application creates it at start-up", "topic", topic)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	defer pc.Close()
	s.closeReplying.Do(func() { close(s.replying) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-pc.Errors():
			s.cfg.Logger.Warn("reading replies", "err", err)
		case m := <-pc.Messages():
			env, err := wire.DecodeEnvelope(m.Value)
			if err != nil {
				s.cfg.Logger.Warn("undecodable reply", "offset", m.Offset, "err", err)
				continue
			}
			s.mu.Lock()
			w := s.waiters[env.Target.ID]
			delete(s.waiters, env.Target.ID)
			oc := s.ops
			s.mu.Unlock()
			switch {
			case w != nil:
				w <- env
			case oc != nil:
				oc.Deliver(env) // the answer to an operator's change
			}
		}
	}
}

// Handler returns the HTTP handler of the API, with its access rules
// (Config.Token, Config.AllowedHosts, no requests from other sites' pages;
// see access.go).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/functions/{namespace}/{name}/{id}", s.send)
	mux.HandleFunc("GET /v1/state/{namespace}/{name}/{id}", s.state)
	if s.cfg.PlaygroundPaths {
		mux.HandleFunc("POST /{namespace}/{name}/{id}", s.send)
		mux.HandleFunc("PUT /{namespace}/{name}/{id}", s.send)
	}
	s.consoleRoutes(mux) // GET / and /v1/console/..., console.go
	s.opsRoutes(mux)     // the operator's API, ops.go
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.cfg.Ready != nil && !s.cfg.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "recovering", "error": "the processor has not recovered its partitions yet"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	return s.guard(mux)
}

// sendResult is the JSON body of an accepted message.
type sendResult struct {
	Request   string `json:"request"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Error     string `json:"error,omitempty"`
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	target, ok := s.address(w, r)
	if !ok {
		return
	}
	typeName, err := messageType(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait <= 0 || wait > s.cfg.MaxWait {
			fail(w, http.StatusBadRequest, fmt.Sprintf("wait=%s: want a duration up to %v, like wait=5s", v, s.cfg.MaxWait))
			return
		}
	}
	if wait > 0 {
		// The request's own bound replaces the server's read and write
		// timeouts, from before the body is read: once it is, the server
		// reads on to notice a client that goes away, and that read timing
		// out would cancel the request.
		s.extendDeadlines(w, wait)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxBody))
			return
		}
		fail(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if isJSON(r.Header.Get("Content-Type")) {
		msg, builtin, err := encodeJSONBody(typeName, body)
		if err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		if builtin {
			body = msg
		}
	}

	req := requestID()
	caller := functions.Address{Type: topology.HTTPCaller, ID: s.cfg.Instance + "/" + req}
	var replies chan wire.Envelope
	if wait > 0 {
		replies = make(chan wire.Envelope, 1)
		s.mu.Lock()
		s.waiters[caller.ID] = replies
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.waiters, caller.ID)
			s.mu.Unlock()
		}()
	}
	idem := r.Header.Get("Idempotency-Key")
	if len(idem) > 256 {
		fail(w, http.StatusBadRequest, "Idempotency-Key is longer than 256 characters")
		return
	}
	if idem != "" && replies == nil {
		// a retry that reached this instance again: answer as the first time
		s.mu.Lock()
		res, ok := s.accepted[target.String()+"\x00"+idem]
		s.mu.Unlock()
		if ok {
			writeJSON(w, http.StatusAccepted, res)
			return
		}
	}
	start := time.Now()
	if replies != nil {
		// the reply could come before Run reads the replies: wait for it
		// first (within the wait; after it the answer is 202, as when no
		// reply comes in time)
		select {
		case <-s.replying:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
	}
	env := wire.Envelope{Target: target, Caller: &caller, Argument: functions.NewMessage(typeName, body), IdempotencyKey: idem}
	topic := string(s.cfg.Topology.LoopTopic())
	msg := &sarama.ProducerMessage{
		Topic: topic, Partition: processor.PartitionFor(target.ID, s.parts),
		Key: sarama.StringEncoder(target.ID), Value: sarama.ByteEncoder(wire.AppendEnvelope(nil, env)),
	}
	if s.cfg.TraceContext {
		msg.Headers = traceHeaders(r.Header)
	}
	// A record over the producer's limit is refused before it is sent:
	// answer that as what it is, a permanent failure.
	if size, limit := msg.ByteSize(2), s.client.Config().Producer.MaxMessageBytes; size > limit {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the message is too large for Kafka: %d bytes as a record (the body and %d bytes of envelope), "+
			"over the %d bytes the producer takes; send a smaller body", size, size-len(body), limit))
		return
	}
	part, off, err := s.producer.SendMessage(msg)
	if errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge) {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the message is too large for Kafka: the broker refused its %d-byte record "+
			"(the topic's max.message.bytes is lower); send a smaller body, or raise max.message.bytes of %s", msg.ByteSize(2), topic))
		return
	}
	if err != nil {
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("writing the message to Kafka failed: %v; retry later", err))
		return
	}
	res := sendResult{Request: req, Topic: topic, Partition: part, Offset: off}
	if idem != "" {
		s.mu.Lock()
		if len(s.accepted) >= maxRemembered {
			clear(s.accepted)
		}
		s.accepted[target.String()+"\x00"+idem] = res
		s.mu.Unlock()
	}
	if replies == nil {
		writeJSON(w, http.StatusAccepted, res)
		return
	}
	s.extendDeadlines(w, wait) // what is left of the wait starts now
	timer := time.NewTimer(max(wait-time.Since(start), 0))
	defer timer.Stop()
	select {
	case reply := <-replies:
		w.Header().Set(TypeHeader, string(reply.Argument.TypeName()))
		if reply.Caller != nil {
			w.Header().Set("Stateloop-Replier", reply.Caller.String())
		}
		if b, ok := decodeJSONReply(reply.Argument); ok && wantsJSON(r) {
			w.Header().Set("Content-Type", jsonMediaType)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b)
			return
		}
		w.Header().Set("Content-Type", vndPrefix+string(reply.Argument.TypeName()))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(reply.Argument.Bytes())
	case <-timer.C:
		res.Error = fmt.Sprintf("no reply within %v; the message was accepted and will be processed", wait)
		writeJSON(w, http.StatusAccepted, res)
	case <-r.Context().Done():
	}
}

// address reads the function address of a request's path; on a bad one
// it answers 400 or 404 and returns false.
func (s *Server) address(w http.ResponseWriter, r *http.Request) (functions.Address, bool) {
	target := functions.Address{Type: functions.TypeName(r.PathValue("namespace") + "/" + r.PathValue("name")), ID: r.PathValue("id")}
	if err := target.Validate(); err != nil {
		fail(w, http.StatusBadRequest, fmt.Sprintf("bad address %s: %v", target, err))
		return target, false
	}
	if !s.cfg.Topology.HasFunction(target.Type) {
		fail(w, http.StatusNotFound, fmt.Sprintf("function type %s is not a function of application %s", target.Type, s.cfg.Topology.App))
		return target, false
	}
	return target, true
}

// extendDeadlines lets the connection of a request with ?wait= read and
// write for the wait and WriteTimeout from now.
func (s *Server) extendDeadlines(w http.ResponseWriter, wait time.Duration) {
	rc := http.NewResponseController(w)
	until := time.Now().Add(wait + s.cfg.WriteTimeout)
	_ = rc.SetReadDeadline(until)
	_ = rc.SetWriteDeadline(until)
}

// vndPrefix starts a Content-Type that names a message type (as StateFun's
// playground ingress does).
const vndPrefix = "application/vnd."

// messageType reads the message's type name from the Stateloop-Type
// header, else from a Content-Type of application/vnd.<type name>.
func messageType(r *http.Request) (functions.TypeName, error) {
	v := r.Header.Get(TypeHeader)
	if v == "" {
		v = vndType(r.Header.Get("Content-Type"))
	}
	if v == "" && isJSON(r.Header.Get("Content-Type")) {
		return "", fmt.Errorf("no message type: Content-Type %s says how the body is written, not what it is; set the %s header to the message's type name (like io.statefun.types/string, whose JSON body is a string like \"Alice\")", jsonMediaType, TypeHeader)
	}
	if v == "" {
		return "", fmt.Errorf("no message type: set the %s header to the message's type name (like io.statefun.types/string), or Content-Type to application/vnd.<type name>", TypeHeader)
	}
	t, err := functions.ParseTypeName(v)
	if err != nil {
		return "", fmt.Errorf("message type %q: %v", v, err)
	}
	return t, nil
}

// vndType returns the type name of a Content-Type
// "application/vnd.<type name>", with any parameters after a ';', or ""
// for another Content-Type. It is parsed by hand: every type name has a
// '/' (namespace/name), which mime.ParseMediaType refuses after the
// subtype's own.
func vndType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	if len(mt) <= len(vndPrefix) || !strings.EqualFold(mt[:len(vndPrefix)], vndPrefix) {
		return ""
	}
	return mt[len(vndPrefix):]
}

func requestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// traceHeaders are the Kafka headers of a request's W3C trace context:
// none without a traceparent, and none of a header over its bound. They
// are not checked further: the processor starts a new trace for a
// traceparent that does not parse.
func traceHeaders(h http.Header) []sarama.RecordHeader {
	tp := h.Get("traceparent")
	if tp == "" || len(tp) > maxTraceParent {
		return nil
	}
	hs := []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte(tp)}}
	if ts := h.Get("tracestate"); ts != "" && len(ts) <= maxTraceState {
		hs = append(hs, sarama.RecordHeader{Key: []byte("tracestate"), Value: []byte(ts)})
	}
	return hs
}
