package processor

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// One failing or hanging remote address holds up nobody else.
//
// The isolation application has one remote function type, iso/count,
// written with the official StateFun Go SDK: it counts the messages of
// each address and writes "<id> <count> <sent>" to <app>-done, where sent
// is the message (the time it was produced, in Unix milliseconds). The
// address iso/count/bad answers every request with HTTP 500; the address
// iso/count/hang never answers within the call timeout.

const (
	isoFn     = functions.TypeName("iso/count")
	isoOut    = functions.TypeName("iso/done")
	isoCallTO = 3 * time.Second
)

var isoMsg = functions.NewType("iso/sent", codec.Text())

func isoServer(t testing.TB, app string, hang time.Duration) *httptest.Server {
	t.Helper()
	count := statefun.ValueSpec{Name: "n", ValueType: statefun.Int64Type}
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		switch ctx.Self().Id {
		case "bad":
			return errors.New("this address always fails")
		case "hang":
			time.Sleep(hang)
		}
		var n int64
		ctx.Storage().Get(count, &n)
		n++
		ctx.Storage().Set(count, n)
		sent := string(msg.RawValue())
		ctx.SendEgress(statefun.KafkaEgressBuilder{Target: statefun.TypeNameFrom(string(isoOut)), Topic: app + "-done", Key: ctx.Self().Id,
			Value: []byte(fmt.Sprintf("%s %d %s", ctx.Self().Id, n, sent))})
		return nil
	}
	b := statefun.StatefulFunctionsBuilder()
	if err := b.WithSpec(statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom(string(isoFn)), States: []statefun.ValueSpec{count},
		Function: statefun.StatefulFunctionPointer(fn)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.AsHandler())
	t.Cleanup(srv.Close)
	return srv
}

// isoApp is the topology of the isolation application, its remote
// function served at url.
func isoApp(app, url string) (topology.Topology, *functions.Registry, Option, error) {
	c, err := remote.New(remote.Config{URL: url + "/{function.name}", CallTimeout: isoCallTO})
	if err != nil {
		return topology.Topology{}, nil, nil, err
	}
	topo := topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  []functions.TypeName{isoFn},
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: isoMsg.Name(), Targets: []functions.TypeName{isoFn}}},
		Egresses:   []topology.Egress{{ID: isoOut, AnyTopic: true}},
	}
	route := func(fn functions.TypeName) remote.Invoker {
		if fn == isoFn {
			return c
		}
		return nil
	}
	return topo, functions.NewRegistry(), WithRemoteFunctions(route), nil
}

// isoFeed writes, every 10 ms, one message to each of a round of ids from
// ids (10 a round, ids cycling), with the time it is written, until ctx
// ends; it returns how many messages each id got.
func isoFeed(ctx context.Context, t testing.TB, prod *dlqProducer, topic string, ids int) map[string]int {
	perID := map[string]int{}
	next := 0
	for ctx.Err() == nil {
		var msgs []*sarama.ProducerMessage
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		for range 10 {
			id := "id" + strconv.Itoa(next%ids)
			next++
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: partitionFor(id, 4), Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(now)})
		}
		if err := prod.sp.SendMessages(msgs); err != nil {
			if ctx.Err() == nil {
				t.Error(err)
			}
			return perID
		}
		for _, m := range msgs {
			k, _ := m.Key.Encode()
			perID[string(k)]++
		}
		time.Sleep(10 * time.Millisecond)
	}
	return perID
}

// isoLatencies reads the output as it comes (read_committed) and returns,
// per message, the time from its sending until it was read; it stops when
// ctx ends.
func isoLatencies(ctx context.Context, t testing.TB, brokers []string, topic string) func() []time.Duration {
	c := committedConsumer(t, brokers, 10*time.Millisecond)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for part := range int32(4) {
		pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					f := strings.Fields(string(m.Value))
					if len(f) == 3 {
						if ms, err := strconv.ParseInt(f[2], 10, 64); err == nil {
							mu.Lock()
							lat = append(lat, time.Since(time.UnixMilli(ms)))
							mu.Unlock()
						}
					}
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return func() []time.Duration {
		wg.Wait()
		c.Close()
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lat)
	}
}

// isoCheck checks the output: each id's last count is its number of
// messages, and bad and hang are in the dead-letter topic once each.
func isoCheck(t testing.TB, client sarama.Client, app string, perID map[string]int) {
	t.Helper()
	last := map[string]int{}
	for _, r := range readTopic(t, client, app+"-done") {
		f := strings.Fields(string(r.Value))
		n, _ := strconv.Atoi(f[1])
		if n != last[f[0]]+1 {
			t.Errorf("%s counted %d after %d", f[0], n, last[f[0]])
		}
		last[f[0]] = n
	}
	for id, n := range perID {
		if last[id] != n {
			t.Errorf("%s: %d messages counted, want %d", id, last[id], n)
		}
	}
	dl := map[string]int{}
	for _, r := range readTopic(t, client, app+"-dlq") {
		dl[r.Headers["stateloop.function.id"]]++
	}
	if dl["bad"] != 1 || dl["hang"] != 1 || len(dl) != 2 {
		t.Errorf("dead letters by address %v, want bad and hang once each", dl)
	}
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

// TestFailingAndHangingRemoteAddressesHoldUpNobodyElse: while one remote
// address answers 500 and another does not answer within the call
// timeout, messages to 1,000 other addresses of the same function type on
// the same instance flow: each is counted once, and their p99 latency
// stays far below the failing calls' timeout (before, every commit waited
// for the calls: 35 s for a message on the same instance). The two
// addresses reach the dead-letter topic once each.
func TestFailingAndHangingRemoteAddressesHoldUpNobodyElse(t *testing.T) {
	brokers, app := testBroker(t, "iso")
	srv := isoServer(t, app, 2*isoCallTO)
	topo, reg, remoteOpt, err := isoApp(app, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond
	p, err := New(brokers, topo, reg, remoteOpt, WithCommitInterval(interval), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { return p.Stats().Ready, fmt.Sprint(p.Stats()) })
	client := testClient(t, brokers)
	createTopic(t, client, app+"-done", 4, "delete")

	ctx, cancel := context.WithCancel(context.Background())
	latencies := isoLatencies(ctx, t, brokers, app+"-done")
	feedCtx, stopFeed := context.WithTimeout(ctx, 2*isoCallTO)
	defer stopFeed()
	var perID map[string]int
	var wg sync.WaitGroup
	prod := newDLQProducer(t, brokers)
	wg.Go(func() { perID = isoFeed(feedCtx, t, prod, app+"-in", 1000) })
	time.Sleep(200 * time.Millisecond)
	produce(t, client, app+"-in", [2][]byte{[]byte("bad"), []byte("0")}, [2][]byte{[]byte("hang"), []byte("0")})
	wg.Wait()
	total := 0
	for _, n := range perID {
		total += n
	}
	waitFor(t, 60*time.Second, "every message counted and both dead letters", func() (bool, string) {
		n := len(readTopic(t, client, app+"-done"))
		d := len(readTopic(t, client, app+"-dlq"))
		return n >= total && d >= 2, fmt.Sprintf("%d of %d counted, %d dead letters", n, total, d)
	})
	cancel()
	lat := latencies()
	isoCheck(t, client, app, perID)
	got := p99(lat)
	t.Logf("%d messages to 1,000 addresses while two addresses failed for %v: p99 %v = %.1f commit intervals", len(lat), isoCallTO, got, float64(got)/float64(interval))
	if got >= isoCallTO/3 {
		t.Errorf("p99 latency of the other addresses %v: they waited for the failing calls", got)
	}
}

// TestKill9WhileARemoteAddressIsParkedKeepsCountsExact kills the
// application (in a child process, with its embedded broker) with SIGKILL
// while the hanging address's call is in flight, with its message in the
// inbox, and while the others flow; after the restart every count is
// exact and the hanging address reaches the dead-letter topic once.
func TestKill9WhileARemoteAddressIsParkedKeepsCountsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running crash test")
	}
	srv := isoServer(t, "crash", 2*isoCallTO)
	dir, listen := t.TempDir(), freePort(t)
	t.Setenv("STATELOOP_TEST_APP_KIND", "iso")
	t.Setenv("STATELOOP_TEST_REMOTE_URL", srv.URL)
	app := startCrashApp(t, dir, listen, 1)
	client := crashClient(t, listen)
	produce(t, client, "crash-in", [2][]byte{[]byte("bad"), []byte("0")}, [2][]byte{[]byte("hang"), []byte("0")})
	// the calls of bad and hang run while the others flow; then the kill
	ctx, cancel := context.WithTimeout(context.Background(), isoCallTO/2)
	perID := isoFeed(ctx, t, newDLQProducer(t, []string{listen}), "crash-in", 200)
	cancel()
	app.kill(t)
	client.Close()
	app = startCrashApp(t, dir, listen, 1)
	client = crashClient(t, listen)
	defer client.Close()
	feedCtx, stopFeed := context.WithTimeout(context.Background(), time.Second)
	defer stopFeed()
	for id, n := range isoFeed(feedCtx, t, newDLQProducer(t, []string{listen}), "crash-in", 200) {
		perID[id] += n
	}
	total := 0
	for _, n := range perID {
		total += n
	}
	waitFor(t, 60*time.Second, "every message counted and both dead letters", func() (bool, string) {
		last := map[string]int{}
		for _, r := range readTopic(t, client, "crash-done") {
			f := strings.Fields(string(r.Value))
			n, _ := strconv.Atoi(f[1])
			last[f[0]] = max(last[f[0]], n)
		}
		counted := 0
		for id := range perID {
			counted += last[id]
		}
		d := len(readTopic(t, client, "crash-dlq"))
		return counted >= total && d >= 2, fmt.Sprintf("%d of %d counted, %d dead letters", counted, total, d)
	})
	isoCheck(t, client, "crash", perID)
	app.cmd.Process.Signal(syscall.SIGTERM)
	_ = app.cmd.Wait()
}
