package httpapi

import (
	"embed"
	"io/fs"
	"net/http"
	"slices"

	"github.com/stateloop/stateloop/functions"
)

//go:embed console
var consoleFiles embed.FS

// consoleCSP keeps the page to its own script, styles and API: it loads
// nothing from elsewhere and runs no inline script.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// consoleRoutes adds the web console to mux: a page at GET / (plain HTML
// and vanilla JS, embedded in the binary) that shows the application as
// Kafka sees it, from the JSON API below. Every request reads Kafka anew,
// so the console shows the whole application (every instance), not just
// this process:
//
//	GET /                              the console page (?lookup=ns/name/id looks an address up on load)
//	GET /console/{file}                its script and style sheet
//	GET /v1/console/app                function types, namespaces, ingresses, egresses, topics
//	GET /v1/console/partitions         group members, partition owners, committed offsets and lag
//	GET /v1/console/dead-letters?n=20  the last records of the dead-letter topic
//	GET /v1/console/rates              invocations and failures per function type, and their rates
//	GET /v1/console/ids/{namespace}/{name}?n=50&after=&prefix=
//	                                   a page of the ids of a function type that have state
//	POST /v1/console/send/{namespace}/{name}/{id}?wait=
//	                                   send a message typed as text: {"type":..., "value":...}
//
// The page's state lookup calls GET /v1/state/{namespace}/{name}/{id};
// its delayed messages GET /v1/timers (ops.go), and its replay button
// POST /v1/dead-letters/replay, which replays through the runtime
// (internal/ops) so that the message is delivered once.
// docs/console.md describes the page and the API.
func (s *Server) consoleRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.consolePage)
	mux.HandleFunc("GET /console/{file}", s.consoleAsset)
	mux.HandleFunc("GET /v1/console/app", s.consoleApp)
	mux.HandleFunc("GET /v1/console/partitions", s.consolePartitions)
	mux.HandleFunc("GET /v1/console/dead-letters", s.consoleDeadLetters)
	mux.HandleFunc("GET /v1/console/rates", s.consoleRates)
	mux.HandleFunc("GET /v1/console/ids/{namespace}/{name}", s.consoleIDs)
	mux.HandleFunc("POST /v1/console/send/{namespace}/{name}/{id}", s.consoleSend)
}

func (s *Server) consolePage(w http.ResponseWriter, _ *http.Request) {
	b, err := consoleFiles.ReadFile("console/index.html")
	if err != nil { // embedded at build time
		panic("httpapi: console page not embedded: " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func (s *Server) consoleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	if _, err := fs.Stat(consoleFiles, "console/"+name); err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, consoleFiles, "console/"+name)
}

// consoleAppInfo is the body of GET /v1/console/app.
type consoleAppInfo struct {
	App        string            `json:"app"`
	Instance   string            `json:"instance"` // this HTTP instance
	Ready      bool              `json:"ready"`    // as /readyz says
	Partitions int32             `json:"partitions"`
	Functions  []consoleFunction `json:"functions"`
	Namespaces []string          `json:"namespaces"`
	Ingresses  []consoleIngress  `json:"ingresses"`
	Egresses   []consoleEgress   `json:"egresses"`
	Topics     consoleTopics     `json:"topics"`
	Error      string            `json:"error,omitempty"` // the topics could not be listed
}

// consoleFunction is one function type of the application.
type consoleFunction struct {
	Type      string `json:"type"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Listed: in topology.Functions; else a type of one of the
	// application's namespaces, found by its table topic.
	Listed      bool     `json:"listed"`
	Table       string   `json:"table"`
	TableExists bool     `json:"table_exists"`
	Ingresses   []string `json:"ingresses,omitempty"` // topics whose records are sent to it
}

type consoleIngress struct {
	Topic     string   `json:"topic"`
	ValueType string   `json:"value_type"`
	Targets   []string `json:"targets,omitempty"`
	Router    bool     `json:"router"` // a router function picks the addresses
}

type consoleEgress struct {
	ID       string   `json:"id"`
	Topics   []string `json:"topics"`
	AnyTopic bool     `json:"any_topic"`
}

type consoleTopics struct {
	Loop       string `json:"loop"`
	DeadLetter string `json:"dead_letter"`
	Replies    string `json:"replies"`
	Timers     string `json:"timers"`
}

// consoleApp answers the application's function types (the listed ones
// and those of its namespaces that have a table), with its ingresses,
// egresses and internal topics.
func (s *Server) consoleApp(w http.ResponseWriter, _ *http.Request) {
	topo := s.cfg.Topology
	info := consoleAppInfo{
		App: topo.App, Instance: s.cfg.Instance, Ready: s.cfg.Ready == nil || s.cfg.Ready(),
		Partitions: topo.PartitionCount(), Namespaces: append([]string{}, topo.Namespaces...),
		Functions: []consoleFunction{}, Ingresses: []consoleIngress{}, Egresses: []consoleEgress{},
		Topics: consoleTopics{Loop: string(topo.LoopTopic()), DeadLetter: string(topo.DLQTopic()),
			Replies: string(topo.RepliesTopic()), Timers: string(topo.TimersTopic())},
	}
	var existing map[string]int32
	client, err := s.consoleClient()
	if err == nil {
		existing, err = partitionCounts(client, nil)
	}
	if err != nil {
		info.Error = err.Error()
	}

	types := slices.Clone(topo.Functions)
	for t := range existing {
		if fn, ok := topo.TableFunction(t); ok && !slices.Contains(types, fn) && topo.HasFunction(fn) {
			types = append(types, fn)
		}
	}
	slices.Sort(types)
	for _, fn := range types {
		table := string(topo.TableTopic(fn))
		_, exists := existing[table]
		f := consoleFunction{Type: string(fn), Namespace: fn.Namespace(), Name: fn.Name(),
			Listed: slices.Contains(topo.Functions, fn), Table: table, TableExists: exists}
		for _, in := range topo.Ingresses {
			if in.Router == nil && slices.Contains(in.Targets, fn) {
				f.Ingresses = append(f.Ingresses, string(in.Topic))
			}
		}
		info.Functions = append(info.Functions, f)
	}
	for _, in := range topo.Ingresses {
		ci := consoleIngress{Topic: string(in.Topic), ValueType: string(in.ValueType), Router: in.Router != nil}
		if in.Router == nil {
			ci.Targets = typeStrings(in.Targets)
		}
		info.Ingresses = append(info.Ingresses, ci)
	}
	for _, e := range topo.Egresses {
		ce := consoleEgress{ID: string(e.ID), AnyTopic: e.AnyTopic, Topics: []string{}}
		for _, t := range e.Topics {
			ce.Topics = append(ce.Topics, string(t))
		}
		info.Egresses = append(info.Egresses, ce)
	}
	writeJSON(w, http.StatusOK, info)
}

func typeStrings(ts []functions.TypeName) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}
