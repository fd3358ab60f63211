package processor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/prommetrics"
	"github.com/stateloop/stateloop/topology"
)

// holdingInvoker is a remote function that holds every request until
// release is closed, then answers it with no effects.
type holdingInvoker struct {
	release  chan struct{}
	requests atomic.Int64
}

func (h *holdingInvoker) Invoke(ctx context.Context, _ functions.Address, _ map[string]functions.StoredValue, _ []remote.Call) (*remote.Result, error) {
	h.requests.Add(1)
	select {
	case <-h.release:
		return &remote.Result{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// gauges scrapes reg and returns the value of every gauge whose name is in
// names, keyed "name{label="value",...}" without the app label, labels
// sorted.
func gauges(t testing.TB, reg prometheus.Gatherer, names ...string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if l.GetName() != "app" {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
			}
			slices.Sort(labels)
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestMetricsTellWhatIsWaiting: regression for issue 10 item 12. With 20
// to 30 messages waiting for a slow remote function,
// stateloop_remote_backlog, stateloop_remote_inflight_requests and
// stateloop_consumer_lag_records read 0: the remote gauges were set only
// when a request completed, and the lag from the last record handed to
// the worker, not from the committed offsets, and only when a record
// arrived. Now, while the function holds every request, the gauges show
// per function type what is queued and in flight, and the lag of each
// ingress partition is what kafka-consumer-groups shows (no offset is
// committed while requests are outstanding); once the function answers,
// all of them go back to 0 without another record arriving.
func TestMetricsTellWhatIsWaiting(t *testing.T) {
	brokers, app := testBroker(t, "metrics")
	heldA, heldB := functions.TypeName("test/held-a"), functions.TypeName("test/held-b")
	inA, inB := app+"-a", app+"-b"
	topo := topology.Topology{
		App: app, Partitions: 4,
		Functions: []functions.TypeName{heldA, heldB},
		Ingresses: []topology.Ingress{
			{Topic: topology.Topic(inA), ValueType: functions.StringType.Name(), Targets: []functions.TypeName{heldA}},
			{Topic: topology.Topic(inB), ValueType: functions.StringType.Name(), Targets: []functions.TypeName{heldB}},
		},
	}
	inv := &holdingInvoker{release: make(chan struct{})}
	metrics := prometheus.NewRegistry()
	pm, err := prommetrics.New(app, metrics)
	if err != nil {
		t.Fatal(err)
	}
	// The commit interval is long enough that every record reaches the
	// batcher before the commit waits for the held requests.
	p, err := New(brokers, topo, functions.NewRegistry(), WithRemoteFunctions(func(functions.TypeName) remote.Invoker { return inv }),
		WithMetrics(pm), WithCommitInterval(5*time.Second), WithLogger(testLogger(t)),
		optionFunc(func(c *config) { c.lagInterval = 50 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })

	// a stream produced while the function holds every request: 20
	// messages to test/held-a/a and 3 to test/held-a/c, 5 to test/held-b/b
	client := testClient(t, brokers)
	keyed := func(key string, n int) [][2][]byte {
		var recs [][2][]byte
		for i := range n {
			recs = append(recs, [2][]byte{[]byte(key), []byte(strconv.Itoa(i))})
		}
		return recs
	}
	produce(t, client, inA, append(keyed("a", 20), keyed("c", 3)...)...)
	produce(t, client, inB, keyed("b", 5)...)

	names := []string{"stateloop_remote_backlog", "stateloop_remote_inflight_requests", "stateloop_remote_blocked_addresses", "stateloop_consumer_lag_records"}
	lag := func(topic string, counts map[string]int) map[string]float64 {
		out := make(map[string]float64)
		for part := range int32(4) {
			n := 0
			for key, c := range counts {
				if partitionFor(key, 4) == part {
					n += c
				}
			}
			out[fmt.Sprintf(`stateloop_consumer_lag_records{partition="%d",topic=%q}`, part, topic)] = float64(n)
		}
		return out
	}
	want := map[string]float64{
		`stateloop_remote_inflight_requests{function_type="test/held-a"}`: 2, // one per address
		`stateloop_remote_backlog{function_type="test/held-a"}`:           19 + 2,
		`stateloop_remote_blocked_addresses{function_type="test/held-a"}`: 0,
		`stateloop_remote_inflight_requests{function_type="test/held-b"}`: 1,
		`stateloop_remote_backlog{function_type="test/held-b"}`:           4,
		`stateloop_remote_blocked_addresses{function_type="test/held-b"}`: 0,
	}
	for k, v := range lag(inA, map[string]int{"a": 20, "c": 3}) {
		want[k] = v
	}
	for k, v := range lag(inB, map[string]int{"b": 5}) {
		want[k] = v
	}
	for k, v := range lag(string(topo.LoopTopic()), nil) {
		want[k] = v
	}
	check := func(what string, want map[string]float64) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() (bool, string) {
			got := gauges(t, metrics, names...)
			var diff []string
			for k, v := range want {
				if got[k] != v {
					diff = append(diff, fmt.Sprintf("%s = %v, want %v", k, got[k], v))
				}
			}
			slices.Sort(diff)
			return len(diff) == 0, strings.Join(diff, "; ")
		})
	}
	check("the gauges to show what waits for the held function", want)
	if n := inv.requests.Load(); n != 3 {
		t.Errorf("the function got %d requests while holding, want 3 (one per address)", n)
	}

	close(inv.release)
	for k := range want {
		want[k] = 0
	}
	check("the gauges to go back to 0 once the function answers", want)
	stop()
}
