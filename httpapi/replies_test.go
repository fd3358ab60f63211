package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// TestRepliesReaderWaitsForTheProcessorToCreateItsTopic is a regression
// test of issue 10: app.Run starts the HTTP listener before the processor,
// so the reader of <app>-replies asked for the topic before it existed, and
// its client's metadata request made the broker create it with the
// broker's default partition count (1 on Kafka); the reader of the
// instance's partition then failed. The reader must leave the topic to the
// processor, wait for it and then deliver replies.
func TestRepliesReaderWaitsForTheProcessorToCreateItsTopic(t *testing.T) {
	c := kafkatest.StartKfakeCluster(t) // creates unknown topics on request, with 4 partitions
	const app, replies = "late-api", "late-api-replies"
	asked := make(chan struct{})
	var once sync.Once
	c.ControlKey(kmsg.Metadata.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		for _, tp := range r.(*kmsg.MetadataRequest).Topics {
			if tp.Topic != nil && *tp.Topic == replies {
				once.Do(func() { close(asked) })
			}
		}
		return nil, nil, false
	})
	brokers := c.ListenAddrs()
	topo := topology.Topology{App: app, Partitions: 8, Functions: []functions.TypeName{"test/counter"}}

	api, err := httpapi.New(httpapi.Config{Brokers: brokers, Topology: topo, Instance: "i1"})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	runErr := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); runErr <- api.Run(ctx) }()
	select {
	case <-asked:
	case err := <-runErr:
		t.Fatalf("Run returned %v before asking for %s", err, replies)
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not ask for %s in 10s", replies)
	}
	// the broker handles requests one at a time: the metadata request is
	// answered before this one
	client := kafkatest.Client(t, brokers)
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := topics[replies]; ok {
		t.Fatalf("the HTTP listener made the broker create %s (%d partitions) before the processor did", replies, d.NumPartitions)
	}

	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/counter", Function: functions.FunctionFunc(func(ctx functions.Context, m functions.Message) error {
		ctx.Reply(m)
		return nil
	})})
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !p.Stats().Ready && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	r := post(t, srv.URL+"/v1/functions/test/counter/alice?wait=20s", string(functions.StringType.Name()), str(t, "hi"))
	if r.status != http.StatusOK {
		t.Errorf("request with wait: %d %s, want 200 and the reply", r.status, r.body)
	}
	select {
	case err := <-runErr:
		t.Errorf("the replies reader stopped: %v", err)
	default:
	}
	if parts, err := client.Partitions(replies); err != nil || len(parts) != 8 {
		t.Errorf("%s: %d partitions (%v), want the application's 8", replies, len(parts), err)
	}
}

// TestARequestThatWaitsBeforeTheRepliesReaderRunsGetsItsReply is a
// regression test: Run reads the replies partition from its end, so a
// request with ?wait= that the listener took before Run had started
// reading wrote its message, the function replied before the reader
// started, and the request waited in vain and answered 202 (it made
// TestConsoleOperatesTheApplicationInHeadlessChromium fail now and then on
// a loaded machine). Such a request must wait for the reader first.
func TestARequestThatWaitsBeforeTheRepliesReaderRunsGetsItsReply(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo := topology.Topology{App: "early", Partitions: 2, Functions: []functions.TypeName{"test/echo"}}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/echo", Function: functions.FunctionFunc(func(ctx functions.Context, m functions.Message) error {
		ctx.Reply(m)
		return nil
	})})
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = p.Run(ctx) })
	deadline := time.Now().Add(30 * time.Second)
	for !p.Stats().Ready {
		if time.Now().After(deadline) {
			t.Fatal("processor not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	api, err := httpapi.New(httpapi.Config{Brokers: brokers, Topology: topo, Instance: "early-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	answer := make(chan response, 1)
	go func() {
		answer <- post(t, srv.URL+"/v1/functions/test/echo/a?wait=15s", string(functions.StringType.Name()), str(t, "hi"))
	}()
	// Before the fix the function replies now, before the reader runs; give
	// it the time to (and its transaction the time to commit).
	before := p.Stats()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if s := p.Stats(); s.Invocations > before.Invocations && s.Commits > before.Commits+1 {
			break
		}
	}
	wg.Go(func() { _ = api.Run(ctx) })
	select {
	case r := <-answer:
		if r.status != http.StatusOK {
			t.Errorf("request with wait sent before the replies reader ran: %d %s, want 200 and the reply", r.status, r.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no answer in 30 s")
	}
}
