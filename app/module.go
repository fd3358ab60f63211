package app

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
	"github.com/stateloop/stateloop/topology/module"
)

// Module is an application, or the part of one, that StateFun module.yaml
// files describe: remote functions behind HTTP endpoints, Kafka ingresses
// and egresses. [Run] merges it into the application's topology when
// Flags.ModuleFiles is set.
type Module struct {
	m       *module.Module
	clients map[*module.Endpoint]*remote.Client
	notes   []string
}

// LoadModule is LoadModules with one file.
func LoadModule(path string, logger *slog.Logger) (*Module, error) {
	return LoadModules([]string{path}, logger)
}

// LoadModules reads and checks module files, StateFun 3.x or 2.x, as one
// application (see [module.Merge]) and prepares an HTTP client for each
// of their endpoints, in the protocol version of its file, which logs its
// retries to logger. Every problem is reported at once, with the file,
// document and line it comes from.
func LoadModules(paths []string, logger *slog.Logger) (*Module, error) {
	var (
		mods  []*module.Module
		errs  []error
		notes []string
	)
	for _, path := range paths {
		m, err := module.ParseFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m.Version == "1.0" || m.Version == "2.0" {
			notes = append(notes, fmt.Sprintf("%s: a StateFun 2.x module (version %q): its functions speak StateFun 2.x's protocol "+
				"(messages as protobuf Any, every state the file declares sent with each call), which cannot be told apart from 3.x's on the wire; "+
				"a function that answers in 3.x's fails with a message saying so", path, m.Version))
		}
		mods = append(mods, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m, err := module.Merge(mods...)
	if err != nil {
		return nil, err
	}
	path := m.File
	mod := &Module{m: m, clients: make(map[*module.Endpoint]*remote.Client), notes: notes}
	fail := func(pos module.Position, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", pos, fmt.Sprintf(format, args...)))
	}
	for _, w := range m.Warnings {
		mod.notes = append(mod.notes, w.String())
	}
	for _, e := range m.Endpoints {
		tr := e.Transport
		if tr.TLS.ClientKeyPassword != "" {
			fail(e.Pos, "endpoint %s: client_key_password: encrypted client keys are not supported; decrypt the key (openssl pkcs8 -topk8 -nocrypt) and leave the password out", e.Functions)
			continue
		}
		if _, _, unix := module.UnixSocket(e.URLPathTemplate); unix {
			fail(e.Pos, "endpoint %s: %s: endpoints on unix sockets are not supported; serve the functions on a TCP port (http://127.0.0.1:PORT/...)", e.Functions, e.URLPathTemplate)
			continue
		}
		batch := e.MaxNumBatchRequests
		if batch <= 0 {
			batch = -1 // StateFun: no cap
		}
		protocol, states := remote.Protocol3, []driver.StateInfo(nil)
		if e.Protocol == module.Protocol2 {
			protocol = remote.Protocol2
			for _, st := range e.States {
				states = append(states, driver.StateInfo{Name: st.Name, Expiration: st.Expiration})
			}
		}
		c, err := remote.New(remote.Config{
			Protocol:            protocol,
			States:              states,
			URL:                 e.URLPathTemplate,
			CallTimeout:         tr.CallTimeout,
			ConnectTimeout:      tr.ConnectTimeout,
			ReadTimeout:         tr.ReadTimeout,
			WriteTimeout:        tr.WriteTimeout,
			MaxNumBatchRequests: batch,
			MaxInFlight:         tr.PoolSize,
			MaxResponseBytes:    int64(tr.PayloadMaxBytes),
			TLS:                 remote.TLSConfig{CAFile: tr.TLS.TrustCACerts, CertFile: tr.TLS.ClientCert, KeyFile: tr.TLS.ClientKey},
			Logger:              logger,
		})
		if err != nil {
			fail(e.Pos, "endpoint %s: %v", e.Functions, err)
			continue
		}
		mod.clients[e] = c
	}
	if eg := m.PlaygroundEgress; eg != nil {
		fail(eg.Pos, "%s: the playground's HTTP egress is not supported; use a Kafka egress (io.statefun.kafka.v1/egress) and `stateloop consume`", module.KindPlaygroundEgress)
	}
	for _, in := range m.Ingresses {
		if len(in.Properties) > 0 {
			mod.notes = append(mod.notes, fmt.Sprintf("%s: ingress %s: properties are ignored: the application reads every topic with its own consumer group and read_committed", in.Pos, in.ID))
		}
		switch in.StartupPosition.Type {
		case module.StartupSpecificOffsets, module.StartupDate:
			fail(in.Pos, "ingress %s: startupPosition %s is not supported; stateloop starts a new application's ingresses at the earliest offset (use earliest or group-offsets)", in.ID, in.StartupPosition.Type)
		case module.StartupLatest, module.StartupGroupOffsets:
			if in.StartupPosition.Type == module.StartupLatest || in.AutoOffsetReset == "latest" {
				mod.notes = append(mod.notes, fmt.Sprintf("%s: ingress %s: a new application starts at the earliest offset of its ingress topics, not the latest; later starts go on from the committed offsets", in.Pos, in.ID))
			}
		}
	}
	for _, e := range m.Egresses {
		if len(e.Properties) > 0 {
			mod.notes = append(mod.notes, fmt.Sprintf("%s: egress %s: properties are ignored: records are written by the application's transactional producer", e.Pos, e.ID))
		}
		if e.DeliverySemantic != module.DeliveryExactlyOnce {
			mod.notes = append(mod.notes, fmt.Sprintf("%s: egress %s: deliverySemantic %s: stateloop writes every egress record exactly once, in its transactions", e.Pos, e.ID, e.DeliverySemantic))
		}
	}
	if err := errors.Join(errs...); err != nil {
		mod.Close()
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	return mod, nil
}

// Close releases the endpoints' HTTP clients.
func (mod *Module) Close() {
	for _, c := range mod.clients {
		c.Close()
	}
}

// PlaygroundIngress returns the StateFun playground's HTTP ingress
// (io.statefun.playground.v1/ingress) of the files, or nil. Run serves it
// with the HTTP listener (--http, else 127.0.0.1 and the ingress's port),
// at its paths: POST or PUT /{namespace}/{name}/{id}.
func (mod *Module) PlaygroundIngress() *module.PlaygroundIngress { return mod.m.PlaygroundIngress }

// Notes are the settings of the file that stateloop accepts but handles
// differently from StateFun, one line each, for the user to read.
func (mod *Module) Notes() []string { return mod.notes }

// Brokers returns the Kafka address the module's ingresses and egresses
// name, if they all name the same one.
func (mod *Module) Brokers() ([]string, error) {
	var addr []string
	var from string
	check := func(pos module.Position, a []string) error {
		if len(a) == 0 {
			return nil
		}
		if addr == nil {
			addr, from = a, pos.String()
			return nil
		}
		if !slices.Equal(addr, a) {
			return fmt.Errorf("%s: address %s differs from %s at %s; stateloop runs an application on one Kafka cluster: pass it with --brokers", pos, strings.Join(a, ","), strings.Join(addr, ","), from)
		}
		return nil
	}
	var errs []error
	for _, in := range mod.m.Ingresses {
		errs = append(errs, check(in.Pos, in.Address))
	}
	for _, e := range mod.m.Egresses {
		errs = append(errs, check(e.Pos, e.Address))
	}
	return addr, errors.Join(errs...)
}

// GroupID returns the consumer group the ingresses name, if they all name
// the same one: a default for the application's name.
func (mod *Module) GroupID() string {
	id := ""
	for _, in := range mod.m.Ingresses {
		if in.ConsumerGroupID == "" || (id != "" && in.ConsumerGroupID != id) {
			return ""
		}
		id = in.ConsumerGroupID
	}
	return id
}

// Merge adds the module to an application: its function types and
// namespaces, ingresses and egresses to topo, and the processor options
// that route its function types to their endpoints. Go functions in reg
// and remote functions message each other like any functions; a type
// registered in reg that an endpoint also binds exactly is an error, and
// one in a namespace that an endpoint binds as a whole stays in Go.
func (mod *Module) Merge(topo topology.Topology, reg *functions.Registry) (topology.Topology, []processor.Option, error) {
	m := mod.m
	var errs []error
	for _, e := range m.Endpoints {
		if e.Type != "" {
			if _, ok := reg.Lookup(e.Type); ok {
				errs = append(errs, fmt.Errorf("%s: function type %s is bound to an endpoint here and registered as a Go function too; keep one", e.Pos, e.Type))
			}
		}
	}
	for _, t := range m.UnboundTargets() {
		if _, ok := reg.Lookup(t); !ok {
			errs = append(errs, fmt.Errorf("module %s: ingress target %s is served by no endpoint and is not a Go function of the application; bind it to an endpoint (io.statefun.endpoints.v2/http), or declare it under functions in a StateFun 2.x file", m.File, t))
		}
	}
	from := m.Topology(topo.App)
	for _, fn := range from.Functions {
		if !slices.Contains(topo.Functions, fn) {
			topo.Functions = append(topo.Functions, fn)
		}
	}
	for _, t := range m.UnboundTargets() {
		if _, ok := reg.Lookup(t); ok && !slices.Contains(topo.Functions, t) {
			topo.Functions = append(topo.Functions, t)
		}
	}
	var callTimeout time.Duration
	for _, e := range m.Endpoints {
		if e.Type == "" && !slices.Contains(topo.Namespaces, e.Namespace) {
			topo.Namespaces = append(topo.Namespaces, e.Namespace)
		}
		callTimeout = max(callTimeout, e.Transport.CallTimeout)
	}
	topo.Ingresses = append(topo.Ingresses, from.Ingresses...)
	for _, e := range from.Egresses {
		e.AnyTopic = true
		topo.Egresses = append(topo.Egresses, e)
	}
	if err := errors.Join(errs...); err != nil {
		return topo, nil, err
	}
	route := func(fn functions.TypeName) remote.Invoker {
		if _, ok := reg.Lookup(fn); ok {
			return nil
		}
		if e, ok := m.EndpointFor(fn); ok {
			if c := mod.clients[e]; c != nil {
				return c
			}
		}
		return nil
	}
	opts := []processor.Option{processor.WithRemoteFunctions(route)}
	// A transaction stays open while remote calls run; let it outlive the
	// longest call (Kafka aborts a transaction older than its timeout).
	if txn := callTimeout + 30*time.Second; txn > processor.DefaultTransactionTimeout {
		opts = append(opts, processor.WithTransactionTimeout(txn))
	}
	return topo, opts, nil
}
