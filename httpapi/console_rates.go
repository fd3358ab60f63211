package httpapi

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The console's rates are those of the metrics of package prommetrics
// that this listener serves on /metrics (Config.Metrics), by function
// type: they count what the processor of this process did, not every
// instance of the application.
const (
	invocationsMetric = "stateloop_function_invocations_total" // successful, by function_type and kind
	failuresMetric    = "stateloop_function_failures_total"    // failed attempts, by function_type
	deadLettersMetric = "stateloop_dead_letters_total"         // by function_type
)

// Rates are measured over rateWindow, from samples taken every
// rateInterval while the console is in use and on every request.
const (
	rateWindow   = time.Minute
	rateInterval = 5 * time.Second
	// minRateSpan is the shortest time a rate is measured over.
	minRateSpan = time.Second
)

// rateCounts are a function type's counters at one time.
type rateCounts struct{ invocations, failures, deadLetters float64 }

type rateSample struct {
	at     time.Time
	counts map[string]rateCounts
}

// rateHistory keeps the samples of the last rateWindow, in Server.rates.
type rateHistory struct {
	start   sync.Once
	mu      sync.Mutex
	samples []rateSample // oldest first
}

// consoleRatesInfo is the body of GET /v1/console/rates.
type consoleRatesInfo struct {
	Instance string `json:"instance"`
	// Window is the span the rates are measured over, in seconds: up to
	// a minute, shorter just after the console was first opened.
	Window    float64               `json:"window_seconds"`
	Functions []consoleFunctionRate `json:"functions"`
	Error     string                `json:"error,omitempty"`
}

// consoleFunctionRate is one function type's counts since this instance
// started and their rates per second over the window (null until two
// samples at least a second apart are known).
type consoleFunctionRate struct {
	Type              string   `json:"type"`
	Invocations       float64  `json:"invocations"`
	Failures          float64  `json:"failures"`
	DeadLetters       float64  `json:"dead_letters"`
	InvocationsPerSec *float64 `json:"invocations_per_second"`
	FailuresPerSec    *float64 `json:"failures_per_second"`
}

// consoleRates answers the invocation and failure counts of each function
// type and their rates over the last minute, from this process's metrics.
// The first request starts sampling every 5 s until the server closes.
func (s *Server) consoleRates(w http.ResponseWriter, _ *http.Request) {
	info := consoleRatesInfo{Instance: s.cfg.Instance, Functions: []consoleFunctionRate{}}
	if s.cfg.Metrics == nil {
		info.Error = "this listener serves no metrics, so the console has no rates"
		writeJSON(w, http.StatusOK, info)
		return
	}
	s.rates.start.Do(func() { go s.sampleRates() })
	cur, err := s.takeRateSample()
	if err != nil {
		info.Error = "reading the metrics: " + err.Error()
	}
	s.rates.mu.Lock()
	var base *rateSample
	for i := range s.rates.samples {
		if b := s.rates.samples[i]; cur.at.Sub(b.at) >= minRateSpan {
			base = &b // a copy: the history's array is reused
			break
		}
	}
	s.rates.mu.Unlock()

	types := slices.Collect(maps.Keys(cur.counts))
	for _, fn := range s.cfg.Topology.Functions {
		if _, ok := cur.counts[string(fn)]; !ok {
			types = append(types, string(fn))
		}
	}
	slices.Sort(types)
	if base != nil {
		info.Window = cur.at.Sub(base.at).Seconds()
	}
	for _, t := range types {
		c := cur.counts[t]
		fr := consoleFunctionRate{Type: t, Invocations: c.invocations, Failures: c.failures, DeadLetters: c.deadLetters}
		if base != nil {
			b := base.counts[t]
			inv, fail := (c.invocations-b.invocations)/info.Window, (c.failures-b.failures)/info.Window
			fr.InvocationsPerSec, fr.FailuresPerSec = &inv, &fail
		}
		info.Functions = append(info.Functions, fr)
	}
	writeJSON(w, http.StatusOK, info)
}

// sampleRates samples the metrics every rateInterval until the server
// closes.
func (s *Server) sampleRates() {
	t := time.NewTicker(rateInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			_, _ = s.takeRateSample()
		}
	}
}

// takeRateSample reads the counters of every function type, adds them to
// the history, drops the samples older than the window and returns them.
func (s *Server) takeRateSample() (rateSample, error) {
	sample := rateSample{at: time.Now(), counts: make(map[string]rateCounts)}
	families, err := s.cfg.Metrics.Gather()
	for _, f := range families {
		for _, m := range f.GetMetric() {
			t := label(m, "function_type")
			if t == "" {
				continue
			}
			c := sample.counts[t]
			switch f.GetName() {
			case invocationsMetric:
				c.invocations += m.GetCounter().GetValue()
			case failuresMetric:
				c.failures += m.GetCounter().GetValue()
			case deadLettersMetric:
				c.deadLetters += m.GetCounter().GetValue()
			default:
				continue
			}
			sample.counts[t] = c
		}
	}
	s.rates.mu.Lock()
	defer s.rates.mu.Unlock()
	keep := s.rates.samples[:0]
	for _, old := range s.rates.samples {
		if sample.at.Sub(old.at) <= rateWindow {
			keep = append(keep, old)
		}
	}
	s.rates.samples = append(keep, sample)
	return sample, err
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
