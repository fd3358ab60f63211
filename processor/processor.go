package processor

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// Processor runs one instance of a stateloop application: a member of the
// application's consumer group that owns some partitions of its loop topic
// and state tables. Start as many instances as you like; Kafka spreads the
// partitions over them.
type Processor struct {
	brokers []string
	topo    topology.Topology
	reg     *functions.Registry
	cfg     config

	mu    sync.Mutex
	stats Stats
	// per stream thread: the loop partitions of its session, whether they
	// are recovered, how many are
	threadParts     map[int][]int32
	threadReady     map[int]bool
	threadRecovered map[int]int
	// per stream thread: its standby partitions (standby.go); the
	// semaphore of the standbys' catch-ups
	threadStandbys map[int][]int32
	standbySlots   chan struct{}

	// tables are the function types whose table topics exist: those of
	// the topology, and those of its namespaces found or created since.
	tablesMu sync.Mutex
	tables   map[functions.TypeName]bool
	// badTables are the existing tables of namespace types that do not
	// fit the application, with the reason; creating, the tables being
	// created, with the time the last try began
	badTables map[functions.TypeName]error
	creating  map[functions.TypeName]time.Time

	// exps caches the declared state expirations of each function type
	expMu sync.Mutex
	exps  map[functions.TypeName]map[string]functions.Expiration

	m Metrics
	// tr makes the spans; nil: tracing is off
	tr *tracer
}

// New checks the topology, the registry and the options, and returns a
// processor ready to Run. It makes no broker calls. Every problem found is
// returned, joined; among them: a function type of the topology that is
// neither registered nor remote, a registered type the topology lacks, an
// egress a registered [functions.Spec] declares that the topology lacks
// (see [topology.Topology.ValidateRegistry]).
func New(brokers []string, topo topology.Topology, reg *functions.Registry, opts ...Option) (*Processor, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	var errs []error
	if len(brokers) == 0 {
		errs = append(errs, errors.New("processor: no brokers"))
	}
	if reg == nil {
		errs = append(errs, errors.New("processor: nil registry"))
	}
	if err := topo.Validate(); err != nil {
		errs = append(errs, err)
	}
	if reg != nil {
		// Regression (issue 10): a registered type missing from the
		// topology, or an egress a function declares and the topology
		// lacks, passed New and turned messages into dead letters.
		if err := topo.ValidateRegistry(reg); err != nil {
			errs = append(errs, err)
		}
		if err := topo.ValidateServed(reg, func(fn functions.TypeName) bool { return cfg.remote != nil && cfg.remote(fn) != nil }); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	var m Metrics = noMetrics{}
	if cfg.metrics != nil {
		m = cfg.metrics
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := &Processor{brokers: brokers, topo: topo, reg: reg, cfg: cfg, tables: make(map[functions.TypeName]bool), badTables: make(map[functions.TypeName]error),
		creating: make(map[functions.TypeName]time.Time), threadParts: make(map[int][]int32), threadReady: make(map[int]bool), threadRecovered: make(map[int]int),
		threadStandbys: make(map[int][]int32), standbySlots: standbySlotsFor(cfg.threads),
		exps: make(map[functions.TypeName]map[string]functions.Expiration), m: m, tr: newTracer(cfg.tracerProvider)}
	for _, fn := range topo.Functions {
		p.tables[fn] = true
		if cfg.remote != nil && cfg.remote(fn) != nil {
			m.Remote(fn, 0, 0, 0) // 0, not absent, before the first request
		}
	}
	return p, nil
}

// Stats returns a snapshot of the processor's counters.
func (p *Processor) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Partitions = nil
	for _, parts := range p.threadParts {
		s.Partitions = append(s.Partitions, parts...)
	}
	slices.Sort(s.Partitions)
	s.Standbys = nil
	for _, parts := range p.threadStandbys {
		s.Standbys = append(s.Standbys, parts...)
	}
	slices.Sort(s.Standbys)
	s.Ready = len(p.threadReady) == p.cfg.threads
	for _, r := range p.threadReady {
		s.Ready = s.Ready && r
	}
	return s
}

// standbysAssigned records the standby partitions of a thread.
func (p *Processor) standbysAssigned(thread int, parts []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.threadStandbys[thread] = parts
}

// assigned records the loop partitions of a thread's new session.
func (p *Processor) assigned(thread int, parts []int32) {
	p.mu.Lock()
	p.threadParts[thread] = append([]int32(nil), parts...)
	p.threadReady[thread] = len(parts) == 0
	p.threadRecovered[thread] = 0
	n := p.recoveredLocked()
	p.mu.Unlock()
	p.m.Recovered(n)
}

// recovered records how many loop partitions of a thread's session have
// recovered their state, and whether that is all of them.
func (p *Processor) recovered(thread, n int, all bool) {
	p.mu.Lock()
	p.threadRecovered[thread] = n
	p.threadReady[thread] = all
	total := p.recoveredLocked()
	p.mu.Unlock()
	p.m.Recovered(total)
}

func (p *Processor) recoveredLocked() int {
	n := 0
	for _, r := range p.threadRecovered {
		n += r
	}
	return n
}

func (p *Processor) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// Run joins the consumer group and processes messages until ctx is
// cancelled, then commits what it has done, leaves the group and returns
// nil. It returns an error when it cannot go on: another running instance
// holds the data directory (a *[DataDirInUseError], at once), the brokers
// cannot be reached at start-up, the topics do not match the topology, or
// the local store cannot be written.
func (p *Processor) Run(ctx context.Context) error {
	return p.run(ctx)
}
