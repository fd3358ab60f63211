package interop_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// The delayed-message scenario every SDK runs. Its functions
// (python/server.py, js/server.js, gosdk_delayed_test.go) are
//
//	<ns>-later topic (JSON interop/Later, keyed by address id)
//	  → <ns>/later: sends "<text> sent <its clock, Unix ms> delay <ms>" to
//	    <ns>/arrive (same id) with the SDK's send-after, with the cancellation
//	    token when the request has one, or cancels a token
//	  → after the delay: <ns>/arrive writes "<text> sent S delay D arrived
//	    <its clock> from <ns>/later/<id>" to the egress interop/arrivals,
//	    topic <ns>-arrivals, keyed by its id
//
// Each of delayedAddresses addresses sends six messages with random delays
// (delayedPlan: some without a token, some with one, some of those then
// cancelled by a later record to the same address, also with a token that
// another address keeps), some cancel a token they never used, and each
// last sends a short "marker". When every marker has arrived, every send
// and cancel before it is committed: the test stops the application while
// the other messages wait, and starts it again on the same data
// directory. The egress must then hold every message that was not
// cancelled exactly once, none before its sender's clock plus its delay,
// and no cancelled one, also well after it would have been due.

const (
	delayedAddresses = 6
	laterEgress      = "interop/arrivals"
	// maxLate bounds how late a delayed message may arrive at a running
	// instance: about one commit interval (100 ms) plus the 10 ms check
	// interval plus the HTTP calls, with room for -race on 2 busy cores.
	maxLate = 2 * time.Second
	// cancelledWait is how long the test waits past the latest time a
	// cancelled message could have been due.
	cancelledWait = 2 * time.Second
)

// delayedSDK is one SDK's side of the delayed-message scenario.
type delayedSDK struct {
	name string // for messages: "Python", "JavaScript", "Go"
	ns   string // the functions' namespace
	// truncation is how much shorter than requested a delay may reach the
	// runtime (the SDKs send whole milliseconds; Python's conversion
	// through a float can lose one).
	truncation time.Duration
	// serve serves <ns>/later and <ns>/arrive, the latter writing to the
	// Kafka topic through the egress laterEgress, and returns the base URL
	// of the functions (<url>/<function name>).
	serve func(t *testing.T, topic string) string
	// module is the template of the module file; "" for
	// delayedModuleYAML.
	module string
	// noCancellation leaves out cancellation tokens and cancels (StateFun
	// 2.x has none).
	noCancellation bool
}

// TestPythonSDKDelayedMessagesArriveOnceNotEarlyAndCancelledOnesNever pins
// delayed messages of the official Python SDK (send_after with and without
// a cancellation token, cancel_delayed_message) through app.Run and a
// module.yaml: each one arrives exactly once and not before the sender's
// clock plus its delay, also when the application restarts while they
// wait, and a cancelled one never.
func TestPythonSDKDelayedMessagesArriveOnceNotEarlyAndCancelledOnesNever(t *testing.T) {
	t.Parallel()
	python := installPython(t)
	server := script(t, "python", "server.py")
	runDelayedScenario(t, delayedSDK{
		name: "Python", ns: "python",
		// send_after sends int(delay.total_seconds() * 1000): 1001 ms
		// reaches the runtime as 1000.
		truncation: time.Millisecond,
		serve: func(t *testing.T, topic string) string {
			return startService(t, "Python", []string{"PYTHONUNBUFFERED=1"}, []string{python, server},
				"--topic", topic, "--namespace", "python", "--egress", laterEgress).URL
		},
	})
}

// TestJavaScriptSDKDelayedMessagesArriveOnceNotEarlyAndCancelledOnesNever
// pins the same for the official JavaScript SDK (sendAfter with and
// without a token, cancelDelayedMessage).
func TestJavaScriptSDKDelayedMessagesArriveOnceNotEarlyAndCancelledOnesNever(t *testing.T) {
	t.Parallel()
	node, modules := installJavaScript(t)
	server := script(t, "js", "server.js")
	runDelayedScenario(t, delayedSDK{
		name: "JavaScript", ns: "js",
		serve: func(t *testing.T, topic string) string {
			return startService(t, "JavaScript", []string{"NODE_PATH=" + modules}, []string{node, server},
				"--topic", topic, "--namespace", "js", "--egress", laterEgress).URL
		},
	})
}

// laterRequest is the JSON type interop/Later that <ns>/later takes.
type laterRequest struct {
	DelayMS int64  `json:"delay_ms"`
	Token   string `json:"token,omitempty"`
	Text    string `json:"text,omitempty"`
	Cancel  string `json:"cancel,omitempty"`
}

// delayedSend is a delayed message the scenario sends.
type delayedSend struct {
	id        string // the sender's (and receiver's) address id
	text      string // unique: "<id>/<n>"
	delay     time.Duration
	token     string
	cancelled bool
	marker    bool
}

// delayedPlan returns the records to produce, in order, keyed by address
// id, and the delayed messages they send.
//
// Without cancellation the same messages are sent without tokens, and
// none is cancelled.
func delayedPlan(rng *rand.Rand, cancellation bool) (keys []string, reqs []laterRequest, sends []delayedSend) {
	ms := func(lo, hi int64) time.Duration { return time.Duration(lo+rng.Int64N(hi-lo+1)) * time.Millisecond }
	for a := range delayedAddresses {
		id := fmt.Sprintf("a%d", a)
		n := 0
		add := func(d time.Duration, token string, cancelled, marker bool) {
			if !cancellation {
				token, cancelled = "", false
			}
			n++
			s := delayedSend{id: id, text: fmt.Sprintf("%s/%d", id, n), delay: d, token: token, cancelled: cancelled, marker: marker}
			sends = append(sends, s)
			keys = append(keys, id)
			reqs = append(reqs, laterRequest{DelayMS: d.Milliseconds(), Token: token, Text: s.text})
		}
		cancel := func(token string) {
			if !cancellation {
				return
			}
			keys = append(keys, id)
			reqs = append(reqs, laterRequest{Cancel: token})
		}
		// Two without a token: neither replaces the other (the Python SDK
		// sends an empty token for none).
		add(ms(500, 2000), "", false, false)
		add(ms(500, 2000), "", false, false)
		add(ms(500, 2000), "keep", false, false)
		// Cancelled ones wait at least a second: their cancel follows at
		// once, in the same partition.
		add(ms(1000, 2000), "drop", true, false)
		// Tokens belong to their sender: the even addresses cancel their
		// "shared", the odd ones keep theirs.
		add(ms(1000, 2000), "shared", a%2 == 0, false)
		cancel("drop")
		if a%2 == 0 {
			cancel("shared")
		}
		if a%3 == 0 {
			cancel("never-sent") // does nothing
		}
		// Last, the marker: when it arrives, everything above is committed.
		add(ms(300, 400), "", false, true)
	}
	return keys, reqs, sends
}

// arrival is a record of the egress: a delayed message received by
// <ns>/arrive.
type arrival struct {
	key, text, caller    string
	sent, delay, arrived int64 // Unix ms, ms, Unix ms
}

func (a arrival) due() int64 { return a.sent + a.delay }

// readArrivals returns the committed records of topic, parsed.
func readArrivals(t *testing.T, client sarama.Client, topic string) []arrival {
	t.Helper()
	var out []arrival
	for _, r := range readRecords(t, client, topic) {
		key, value, _ := strings.Cut(r, ": ")
		var a arrival
		a.key = key
		_, err := fmt.Sscanf(value, "%s sent %d delay %d arrived %d from %s", &a.text, &a.sent, &a.delay, &a.arrived, &a.caller)
		if err != nil || fmt.Sprintf("%s sent %d delay %d arrived %d from %s", a.text, a.sent, a.delay, a.arrived, a.caller) != value {
			t.Errorf("egress record %q: want \"<text> sent <ms> delay <ms> arrived <ms> from <caller>\" (%v)", r, err)
			continue
		}
		out = append(out, a)
	}
	return out
}

// waitingTimers counts the delayed messages that wait in the timers topic
// (committed records whose latest value per key is not a tombstone).
func waitingTimers(t *testing.T, client sarama.Client, topic string) int {
	t.Helper()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions %s: %v", topic, err)
	}
	live := map[string]bool{}
	for _, p := range parts {
		start, _, lso, err := kafkaread.Ends(client, topic, p)
		if err != nil {
			t.Fatalf("ends %s/%d: %v", topic, p, err)
		}
		_, err = kafkaread.ReadCommitted(t.Context(), client, topic, p, start, lso, func(r kafkaread.Record) error {
			live[fmt.Sprintf("%d/%x", p, r.Key)] = len(r.Value) > 0
			return nil
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
	}
	n := 0
	for _, l := range live {
		if l {
			n++
		}
	}
	return n
}

// delayedModuleYAML binds <ns>/* to the SDK's service, reads the <ns>-later
// topic as an ingress into <ns>/later and declares the egress.
const delayedModuleYAML = `kind: io.statefun.endpoints.v2/http
spec:
  functions: {{ns}}/*
  urlPathTemplate: {{url}}/{function.name}
  transport:
    type: io.statefun.transports.v1/async
    call: 20s
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: {{ns}}/later
  address: {{brokers}}
  consumerGroupId: {{app}}
  startupPosition:
    type: earliest
  topics:
    - topic: {{ns}}-later
      valueType: interop/Later
      targets:
        - {{ns}}/later
---
kind: io.statefun.kafka.v1/egress
spec:
  id: ` + laterEgress + `
  address: {{brokers}}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
`

func runDelayedScenario(t *testing.T, sdk delayedSDK) {
	start := time.Now()
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	appName := "interop-later-" + sdk.ns
	later, arrivals := sdk.ns+"-later", sdk.ns+"-arrivals"
	createTopics(t, client, map[string]int32{later: 4, arrivals: 2})

	url := sdk.serve(t, arrivals)
	dir := t.TempDir()
	modulePath := filepath.Join(dir, "module.yaml")
	template := delayedModuleYAML
	if sdk.module != "" {
		template = sdk.module
	}
	yaml := strings.NewReplacer("{{ns}}", sdk.ns, "{{url}}", url, "{{brokers}}", strings.Join(brokers, ","), "{{app}}", appName).Replace(template)
	if err := os.WriteFile(modulePath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := app.Flags{DataDir: filepath.Join(dir, "data"), Partitions: 4, LogLevel: "warn", ModuleFiles: []string{modulePath}}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	keys, reqs, sends := delayedPlan(rand.New(rand.NewPCG(seed, 0)), !sdk.noCancellation)
	plan := map[string]delayedSend{}
	markerOf := map[string]string{} // address id → its marker's text
	var markers []string
	for _, s := range sends {
		plan[s.text] = s
		if s.marker {
			markerOf[s.id] = s.text
			markers = append(markers, s.text)
		}
	}

	// Run 1: send everything, wait for the markers, stop.
	out, runErr, stop := startApp(t, flags)
	waitForOutput(t, out, runErr, "application "+appName+" ready")
	ready1 := time.Now()
	produceJSON(t, client, later, keys, reqs)
	sentAt := time.Now()
	waitForArrivals(t, client, arrivals, markers, 30*time.Second)
	if t.Failed() {
		logDeadLetters(t, client, appName)
		return
	}
	stopAt := time.Now()
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("run 1: Run: %v\noutput:\n%s", err, out)
	}
	stopped := time.Now()
	waiting := waitingTimers(t, client, appName+"-timers")
	before := len(readArrivals(t, client, arrivals))
	t.Logf("run 1 stopped: %d delayed messages waiting in %s-timers, %d arrived", waiting, appName, before)
	if waiting == 0 {
		t.Errorf("no delayed message waited in %s-timers when the application stopped: the restart tests nothing", appName)
	}

	// Run 2, on the same data directory: the waiting messages arrive.
	out, runErr, stop = startApp(t, flags)
	waitForOutput(t, out, runErr, "application "+appName+" ready")
	readyAt := time.Now()
	var want []string
	for _, s := range sends {
		if !s.cancelled {
			want = append(want, s.text)
		}
	}
	byText := waitForArrivals(t, client, arrivals, want, 30*time.Second)
	allAt := time.Now()
	// A cancelled message was sent (and its due time fixed) before its
	// address's marker arrived: wait until it would have been due, and
	// then some.
	waitUntil := readyAt.Add(cancelledWait)
	for _, s := range sends {
		if s.cancelled {
			m := byText[markerOf[s.id]]
			if len(m) == 0 {
				continue
			}
			if w := time.UnixMilli(m[0].arrived).Add(s.delay + cancelledWait); w.After(waitUntil) {
				waitUntil = w
			}
		}
	}
	time.Sleep(time.Until(waitUntil))
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("run 2: Run: %v\noutput:\n%s", err, out)
	}

	// Everything is committed now.
	got := readArrivals(t, client, arrivals)
	byText = map[string][]arrival{}
	for _, a := range got {
		byText[a.text] = append(byText[a.text], a)
	}
	var lates []time.Duration
	var restarted int // delivered by run 2, due before it was ready
	for _, s := range sends {
		as := byText[s.text]
		switch {
		case s.cancelled && len(as) > 0:
			a := as[0]
			t.Errorf("%s (delay %v, token %q) was cancelled but arrived (%d times): sent %s, due %s, arrived %s; its cancel was committed before its address's marker arrived (%s)",
				s.text, s.delay, s.token, len(as), ms(a.sent), ms(a.due()), ms(a.arrived), markerArrival(byText[markerOf[s.id]]))
			continue
		case s.cancelled:
			continue
		case len(as) != 1:
			t.Errorf("%s (delay %v, token %q) arrived %d times, want once", s.text, s.delay, s.token, len(as))
		}
		for _, a := range as {
			if a.key != s.id || a.caller != sdk.ns+"/later/"+s.id {
				t.Errorf("%s arrived with key %q from %s, want key %q from %s/later/%s", s.text, a.key, a.caller, s.id, sdk.ns, s.id)
			}
			if a.delay != s.delay.Milliseconds() {
				t.Errorf("%s says delay %d ms, want %d", s.text, a.delay, s.delay.Milliseconds())
			}
			// Never early: the runtime fixes the due time when it gets
			// the function's answer, after the function read its clock.
			if early := a.due() - a.arrived; early > sdk.truncation.Milliseconds() {
				t.Errorf("%s arrived %d ms early: sent %s + %d ms = %s, arrived %s (tolerance %v: whole milliseconds)",
					s.text, early, ms(a.sent), a.delay, ms(a.due()), ms(a.arrived), sdk.truncation)
			}
			due, arrived := time.UnixMilli(a.due()), time.UnixMilli(a.arrived)
			late := arrived.Sub(due)
			if !arrived.After(stopped) || !due.Before(readyAt) {
				// Due and arrived while an instance ran: on time.
				lates = append(lates, late)
				if late > maxLate {
					t.Errorf("%s arrived %v late (due %s, arrived %s), want at most %v on a running instance", s.text, late, ms(a.due()), ms(a.arrived), maxLate)
				}
				continue
			}
			// It waited through the restart: it was due shortly before
			// the stop (too late to arrive in run 1) or while stopped,
			// and arrives as soon as the new run is up.
			restarted++
			if due.Before(stopAt.Add(-maxLate)) {
				t.Errorf("%s was due %v before the application stopped but arrived only after the restart (%s)", s.text, stopAt.Sub(due), ms(a.arrived))
			}
			if arrived.After(readyAt.Add(maxLate)) {
				t.Errorf("%s waited through the restart and arrived %v after the restarted application was ready, want at most %v", s.text, arrived.Sub(readyAt), maxLate)
			}
		}
	}
	for text, as := range byText {
		if _, ok := plan[text]; !ok {
			t.Errorf("unexpected egress record %q (%d times)", text, len(as))
		}
	}
	if dlq := kafkatest.ReadCommitted(t, client, appName+"-dlq"); len(dlq) != 0 {
		t.Errorf("%d dead letters, want none", len(dlq))
		logDeadLetters(t, client, appName)
	}
	slices.Sort(lates)
	var median time.Duration
	if len(lates) > 0 {
		median = lates[len(lates)/2]
	}
	t.Logf("%s: %d delayed messages sent, %d cancelled, %d egress records; %d waited through the restart; "+
		"the others arrived late by %v–%v (median %v); seed %d",
		sdk.name, len(sends), len(sends)-len(want), len(got), restarted, first(lates), last(lates), median, seed)
	t.Logf("timings: app ready %v after start; markers arrived %v after producing; stop took %v; restart ready %v after stop; all arrived %v after producing; waited for the cancelled ones until %v; total %v",
		ready1.Sub(start).Round(time.Millisecond), stopAt.Sub(sentAt).Round(time.Millisecond), stopped.Sub(stopAt).Round(time.Millisecond),
		readyAt.Sub(stopped).Round(time.Millisecond), allAt.Sub(sentAt).Round(time.Millisecond), waitUntil.Sub(sentAt).Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
}

// waitForArrivals waits until every text of want has arrived on topic,
// and returns the arrivals by text.
func waitForArrivals(t *testing.T, client sarama.Client, topic string, want []string, timeout time.Duration) map[string][]arrival {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		byText := map[string][]arrival{}
		for _, a := range readArrivals(t, client, topic) {
			byText[a.text] = append(byText[a.text], a)
		}
		var missing []string
		for _, w := range want {
			if len(byText[w]) == 0 {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return byText
		}
		if time.Now().After(deadline) {
			t.Errorf("topic %s: %q have not arrived after %v", topic, missing, timeout)
			return byText
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produceJSON writes each request as JSON, keyed by its key, in order.
func produceJSON(t *testing.T, client sarama.Client, topic string, keys []string, reqs []laterRequest) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		v, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		// One at a time: a cancel must follow its send.
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(keys[i]), Value: sarama.ByteEncoder(v)}); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

func markerArrival(m []arrival) string {
	if len(m) == 0 {
		return "the marker did not arrive"
	}
	return "its marker arrived " + ms(m[0].arrived)
}

// ms formats Unix milliseconds as a time of day.
func ms(unixMilli int64) string { return time.UnixMilli(unixMilli).Format("15:04:05.000") }

func first(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[0]
}

func last(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}
