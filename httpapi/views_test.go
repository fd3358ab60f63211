package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// api is an HTTP API server without a processor, served by its Serve.
type api struct {
	url  string
	addr string
	stop func() // stops it and waits; safe to call twice
}

// startAPI starts an HTTP API server for topo, with cfg's settings (its
// Brokers, Topology and Instance are set here), on a free port of
// 127.0.0.1.
func startAPI(t *testing.T, brokers []string, topo topology.Topology, cfg httpapi.Config) api {
	t.Helper()
	cfg.Brokers, cfg.Topology, cfg.Instance = brokers, topo, "views-test"
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	wg.Go(func() {
		if err := s.Serve(ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			if err := s.Shutdown(sctx); err != nil {
				t.Errorf("shut the server down: %v", err)
			}
			cancel()
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Errorf("close the server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return api{url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), stop: stop}
}

// settleGoroutines waits up to 20 s for the number of goroutines to drop
// to at most limit and returns the last count. Connections and goroutines
// end a moment after the clients that own them are closed.
func settleGoroutines(limit int) int {
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineSlack is what the goroutine counts of these tests may be above
// their baseline: sarama's clients start and end short-lived goroutines
// (metadata refreshes, broker connections) at any time.
const goroutineSlack = 15

// Regression test for issue 10, item 7: GET /v1/state for a function type
// of a namespace whose table does not exist asked Kafka for the table's
// partitions with a metadata request that creates missing topics, so it
// created the table with the broker's defaults (which the processor then
// adopted, and dead-lettered every message to the type); and it kept a
// view of the new table, its goroutines and connections, for good. A read
// must create nothing and answer 404.
func TestStateGetOfTypesWithoutATableCreatesNothing(t *testing.T) {
	brokers := kafkatest.StartKfake(t) // with auto topic creation, like Kafka's default
	client := kafkatest.Client(t, brokers)
	topo := topology.Topology{App: "views", Partitions: 4, Namespaces: []string{"dyn"}}
	a := startAPI(t, brokers, topo, httpapi.Config{})
	if resp, err := http.Get(a.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	topicsBefore := kafkatest.Topics(t, client)
	base := runtime.NumGoroutine()

	for i := range 30 {
		fn := functions.TypeName(fmt.Sprintf("dyn/random-%d", i))
		resp, err := http.Get(a.url + "/v1/state/" + string(fn) + "/x")
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		table := string(topo.TableTopic(fn))
		if resp.StatusCode != http.StatusNotFound || err != nil || !strings.Contains(e.Error, table+" does not exist") {
			t.Errorf("GET the state of %s/x: %d %q (%v), want 404 saying its table %s does not exist", fn, resp.StatusCode, e.Error, err, table)
		}
	}
	// the application has not created its loop topic: a message waits
	start := time.Now()
	r := post(t, a.url+"/v1/functions/dyn/random-0/x", string(functions.StringType.Name()), str(t, "x"))
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "retry later") {
		t.Errorf("POST before the loop topic exists: %d %s, want 503 saying to retry later", r.status, r.body)
	}
	t.Logf("POST before the loop topic exists: %d after %v", r.status, time.Since(start).Round(time.Millisecond))
	if got := kafkatest.Topics(t, client); !slices.Equal(got, topicsBefore) {
		t.Errorf("topics after 30 GETs and a POST: %v, want the topics before them: %v", got, topicsBefore)
	}
	if n := settleGoroutines(base + goroutineSlack); n > base+goroutineSlack {
		t.Errorf("after 30 GETs of types without a table: %d goroutines, want at most %d (%d before)", n, base+goroutineSlack, base)
	}
}

// createTable creates the compacted table topic of fn with the topology's
// partition count, as the processor does, and writes the state "n" = n to
// the addresses of ids, each in the partition that owns it.
func createTable(t *testing.T, client sarama.Client, topo topology.Topology, fn functions.TypeName, n int32, ids ...string) {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	compact := "compact"
	topic := string(topo.TableTopic(fn))
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: topo.PartitionCount(), ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false); err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		return
	}
	val, err := functions.IntType.Codec().Encode(n)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := gokaview.StateCodec{}.Encode(gokaview.State{"n": {TypeName: functions.IntType.Name(), Value: val}})
	if err != nil {
		t.Fatal(err)
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(addrs(client), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, id := range ids {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: processor.PartitionFor(id, topo.PartitionCount()),
			Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(rec)}); err != nil {
			t.Fatal(err)
		}
	}
}

// addrs returns the addresses of a client's brokers.
func addrs(client sarama.Client) []string {
	var out []string
	for _, b := range client.Brokers() {
		out = append(out, b.Addr())
	}
	return out
}

// getState answers GET /v1/state/{address}: the status, the value "n" of
// a 200 and the error of any other answer.
func getState(t *testing.T, url, address string) (status int, n any, errMsg string) {
	t.Helper()
	resp, err := http.Get(url + "/v1/state/" + address)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		State map[string]struct {
			Value any `json:"value"`
		} `json:"state"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET /v1/state/%s: %d, the body does not decode: %v", address, resp.StatusCode, err)
	}
	return resp.StatusCode, body.State["n"].Value, body.Error
}

// Regression test for issue 10, item 7: every function type whose state
// was asked for got a view of its table that was never closed, so GETs on
// many types kept a view each (its goroutines, connections and the whole
// table in memory) for good, and closing the server released none of
// them. The open views must be bounded, and closing one, or the server,
// must release everything.
func TestStateViewsAreBoundedAndReleased(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo := topology.Topology{App: "bounded", Partitions: 4, Namespaces: []string{"dyn"}}
	const types = 30
	client := kafkatest.Client(t, brokers)
	for i := range types {
		var ids []string
		if i == 0 {
			ids = []string{"alice"}
		}
		createTable(t, client, topo, functions.TypeName(fmt.Sprintf("dyn/t%d", i)), 7, ids...)
	}
	before := runtime.NumGoroutine()
	a := startAPI(t, brokers, topo, httpapi.Config{}) // the default bound
	if st, _, msg := getState(t, a.url, "dyn/t1/nobody"); st != http.StatusNotFound || !strings.Contains(msg, "has no state") {
		t.Fatalf("GET the state of dyn/t1/nobody: %d %q, want 404 saying it has no state", st, msg)
	}
	// one view open: its cost
	oneView := runtime.NumGoroutine()

	for i := range types {
		address := fmt.Sprintf("dyn/t%d/alice", i)
		st, n, msg := getState(t, a.url, address)
		switch {
		case i == 0 && (st != http.StatusOK || n != float64(7)):
			t.Errorf("GET the state of %s: %d n=%v %q, want 200 with n = 7", address, st, n, msg)
		case i > 0 && (st != http.StatusNotFound || !strings.Contains(msg, "has no state")):
			t.Errorf("GET the state of %s: %d %q, want 404 saying it has no state", address, st, msg)
		}
	}
	// the view of t0 was closed for later ones; it opens again
	if st, n, msg := getState(t, a.url, "dyn/t0/alice"); st != http.StatusOK || n != float64(7) {
		t.Errorf("GET the state of dyn/t0/alice again: %d n=%v %q, want 200 with n = 7", st, n, msg)
	}
	perView := max(oneView-before, 1)
	limit := before + (httpapi.DefaultMaxViews+2)*perView
	if n := settleGoroutines(limit); n > limit {
		t.Errorf("after GETs on %d function types: %d goroutines, %d before the server started and %d with one view open; "+
			"want at most %d, as for %d views", types, n, before, oneView, limit, httpapi.DefaultMaxViews+2)
	}

	// Requests at once, more types than views: each is answered, some
	// with 503 and Retry-After while every view is in use.
	var wg sync.WaitGroup
	for i := range types {
		wg.Go(func() {
			resp, err := http.Get(a.url + fmt.Sprintf("/v1/state/dyn/t%d/alice", i))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if ok := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound ||
				resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""; !ok {
				t.Errorf("GET the state of dyn/t%d/alice among others: %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()

	a.stop()
	if n := settleGoroutines(before + goroutineSlack); n > before+goroutineSlack {
		t.Errorf("after the server closed: %d goroutines, want at most %d (%d before it started)", n, before+goroutineSlack, before)
	}
}
