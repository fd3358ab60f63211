package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/prommetrics"
	"github.com/stateloop/stateloop/topology"
)

// The console tests' application "console": test/counter counts the
// messages of each id, keeps the last one and replies; a message starting
// with "remind" also sends it a delayed "reminder" due in an hour, and
// "flaky" fails while consoleApp.broken is set; dyn/echo, a type of the
// namespace dyn that the application serves as a whole, passes its
// messages on to test/counter/bob (through the loop topic, in a
// transaction); the ingress topic console-names feeds test/counter.
var lastMessage = functions.NewState("last", functions.StringType)

const greeting = "hello from the console test"

type consoleApp struct {
	srv     *httptest.Server // the API as a browser sees it
	url     string           // the API for the test's own requests: with the token, if any
	brokers []string
	topo    topology.Topology
	broken  *atomic.Bool // test/counter fails "flaky" messages
}

func startConsoleApp(t *testing.T) consoleApp {
	t.Helper()
	return startConsoleAppWith(t, "")
}

// startConsoleAppWith starts the console's application with an HTTP API
// that needs token (none if "").
func startConsoleAppWith(t *testing.T, token string) consoleApp {
	t.Helper()
	brokers := kafkatest.StartKfake(t)
	broken := new(atomic.Bool)
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/counter", State: []functions.StateSpec{counted, lastMessage},
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			if s == "flaky" && broken.Load() {
				return errors.New("test/counter is broken for now")
			}
			if strings.HasPrefix(s, "remind") {
				ctx.SendAfter(time.Hour, ctx.Self(), functions.StringType.Of("reminder"))
			}
			n, _ := counted.Get(ctx)
			counted.Set(ctx, n+1)
			lastMessage.Set(ctx, s)
			ctx.Reply(functions.StringType.Of(fmt.Sprintf("%s #%d", s, n+1)))
			return nil
		}))})
	reg.MustRegister(functions.Spec{Type: "dyn/echo", Function: functions.FunctionFunc(func(ctx functions.Context, msg functions.Message) error {
		if c, _ := ctx.Caller(); c.Type != topology.HTTPCaller {
			return nil // test/counter's reply
		}
		// delayed, so the runtime writes it to the loop topic in a
		// transaction (a message sent at once is delivered locally, in the
		// sender's transaction): the loop ends with a commit marker
		ctx.SendAfter(time.Millisecond, functions.Address{Type: "test/counter", ID: "bob"}, msg)
		return nil
	})})
	topo := topology.Topology{App: "console", Partitions: 4, Functions: []functions.TypeName{"test/counter"}, Namespaces: []string{"dyn"},
		Ingresses: []topology.Ingress{{Topic: "console-names", ValueType: functions.StringType.Name(), Targets: []functions.TypeName{"test/counter"}}}}
	metrics := prometheus.NewRegistry()
	pm, err := prommetrics.New(topo.App, metrics)
	if err != nil {
		t.Fatal(err)
	}
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond), processor.WithMetrics(pm),
		processor.WithRetries(1, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	api, err := httpapi.New(httpapi.Config{Brokers: brokers, Topology: topo, Instance: "console-test", Ready: func() bool { return p.Stats().Ready }, Token: token, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer wg.Done(); _ = api.Run(ctx) }()
	h := api.Handler()
	srv := httptest.NewServer(h)
	trusted := srv
	if token != "" {
		trusted = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			h.ServeHTTP(w, r)
		}))
	}
	t.Cleanup(func() { srv.Close(); trusted.Close(); cancel(); wg.Wait(); api.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for !p.Stats().Ready {
		if time.Now().After(deadline) {
			t.Fatal("processor not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return consoleApp{srv: srv, url: trusted.URL, brokers: brokers, topo: topo, broken: broken}
}

// populate gives the console something to show: three messages to
// test/counter/alice (the last is the greeting), one to dyn/echo/x (and
// so to test/counter/bob), and a
// message of a type test/counter does not handle, which goes to the
// dead-letter topic.
func (a consoleApp) populate(t *testing.T) {
	t.Helper()
	st := string(functions.StringType.Name())
	for i, msg := range []string{"one", "two", greeting} {
		if r := post(t, a.url+"/v1/functions/test/counter/alice?wait=30s", st, str(t, msg)); r.status != http.StatusOK {
			t.Fatalf("message %d to test/counter/alice: %d %s", i+1, r.status, r.body)
		}
	}
	if r := post(t, a.url+"/v1/functions/dyn/echo/x", st, str(t, "x")); r.status != http.StatusAccepted {
		t.Fatalf("message to dyn/echo/x: %d %s", r.status, r.body)
	}
	if r := post(t, a.url+"/v1/functions/test/counter/mallory", "test/bogus", "poison"); r.status != http.StatusAccepted {
		t.Fatalf("bad message to test/counter/mallory: %d %s", r.status, r.body)
	}
}

// The JSON bodies of the console API, as far as the tests read them.
type (
	appJSON struct {
		App        string         `json:"app"`
		Ready      bool           `json:"ready"`
		Functions  []functionJSON `json:"functions"`
		Namespaces []string       `json:"namespaces"`
	}
	functionJSON struct {
		Type        string   `json:"type"`
		Listed      bool     `json:"listed"`
		TableExists bool     `json:"table_exists"`
		Ingresses   []string `json:"ingresses"`
	}
	partitionsJSON struct {
		State   string `json:"state"`
		Members []struct {
			MemberID   string             `json:"member_id"`
			ClientID   string             `json:"client_id"`
			Assignment map[string][]int32 `json:"assignment"`
		} `json:"members"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Kind      string `json:"kind"`
			Partition int32  `json:"partition"`
			Owner     string `json:"owner"`
			ClientID  string `json:"client_id"`
			Committed int64  `json:"committed"`
			LSO       int64  `json:"lso"`
			Lag       int64  `json:"lag"`
			LagExact  bool   `json:"lag_exact"`
			Error     string `json:"error"`
		} `json:"partitions"`
		Lag    int64    `json:"lag"`
		Errors []string `json:"errors"`
	}
	deadLettersJSON struct {
		Topic   string `json:"topic"`
		Records []struct {
			Reason       string `json:"reason"`
			FunctionType string `json:"function_type"`
			FunctionID   string `json:"function_id"`
			Source       *struct {
				Topic string `json:"topic"`
			} `json:"source"`
			Message *struct {
				Target string `json:"target"`
				Caller string `json:"caller"`
				Type   string `json:"type"`
				Value  any    `json:"value"`
			} `json:"message"`
		} `json:"records"`
		Errors []string `json:"errors"`
	}
)

// getJSON decodes the JSON body of GET url into v and returns the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %d, body does not decode: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode
}

// eventually retries check until it returns "" (done), failing the test
// with its last answer after 20 s.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitSettled waits until the console's API shows what populate did: the
// dead letter, the table of dyn/echo, every partition owned and no lag,
// and alice's committed state. It returns the partitions answer.
func (a consoleApp) waitSettled(t *testing.T) partitionsJSON {
	t.Helper()
	eventually(t, func() string {
		var dl deadLettersJSON
		if st := getJSON(t, a.url+"/v1/console/dead-letters", &dl); st != 200 || len(dl.Records) == 0 {
			return fmt.Sprintf("dead letters: %d %+v, want a record", st, dl)
		}
		return ""
	})
	eventually(t, func() string {
		var app appJSON
		getJSON(t, a.url+"/v1/console/app", &app)
		if !slices.ContainsFunc(app.Functions, func(f functionJSON) bool { return f.Type == "dyn/echo" }) {
			return fmt.Sprintf("app: %+v, want dyn/echo among the function types once its table exists", app)
		}
		return ""
	})
	var parts partitionsJSON
	eventually(t, func() string {
		parts = partitionsJSON{}
		getJSON(t, a.url+"/v1/console/partitions", &parts)
		if len(parts.Partitions) != 8 || parts.Lag != 0 || len(parts.Errors) > 0 {
			return fmt.Sprintf("partitions: %+v, want 8 partitions (loop and ingress) without lag or errors", parts)
		}
		for _, p := range parts.Partitions {
			if p.Owner == "" || p.Error != "" {
				return fmt.Sprintf("partitions: %+v, want every partition owned", parts)
			}
		}
		return ""
	})
	eventually(t, func() string {
		var st struct {
			State map[string]struct {
				Value any `json:"value"`
			} `json:"state"`
		}
		if code := getJSON(t, a.url+"/v1/state/test/counter/alice", &st); code != 200 || st.State["last"].Value != greeting {
			return fmt.Sprintf("state of test/counter/alice: %d %+v, want last = %q", code, st, greeting)
		}
		return ""
	})
	return parts
}

// groupMembers asks Kafka, not the console, for the member ids of the
// application's consumer group.
func groupMembers(t *testing.T, brokers []string, group string) []string {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(kafkatest.Client(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(groups) != 1 {
		t.Fatalf("describe group %s: %v %v", group, groups, err)
	}
	var ids []string
	for id := range groups[0].Members {
		ids = append(ids, id)
	}
	return ids
}

func TestConsoleAPIShowsFunctionsPartitionsAndDeadLetters(t *testing.T) {
	a := startConsoleApp(t)
	a.populate(t)
	parts := a.waitSettled(t)

	var app appJSON
	getJSON(t, a.url+"/v1/console/app", &app)
	if app.App != "console" || !app.Ready || !slices.Equal(app.Namespaces, []string{"dyn"}) || len(app.Functions) != 2 {
		t.Errorf("app: %+v, want console, ready, namespace dyn and two function types", app)
	} else {
		dyn, counter := app.Functions[0], app.Functions[1]
		if dyn.Type != "dyn/echo" || dyn.Listed || !dyn.TableExists {
			t.Errorf("function types[0]: %+v, want dyn/echo from its namespace, with a table", dyn)
		}
		if counter.Type != "test/counter" || !counter.Listed || !counter.TableExists || !slices.Equal(counter.Ingresses, []string{"console-names"}) {
			t.Errorf("function types[1]: %+v, want test/counter, listed, fed by console-names", counter)
		}
	}

	members := groupMembers(t, a.brokers, "console")
	if len(parts.Members) != 1 || len(members) != 1 || parts.Members[0].MemberID != members[0] || parts.Members[0].ClientID != "stateloop-console" ||
		!slices.Equal(parts.Members[0].Assignment["console-loop"], []int32{0, 1, 2, 3}) {
		t.Errorf("members: %+v, want the group's one member %v (client stateloop-console) with loop partitions 0-3", parts.Members, members)
	}
	// The loop topic ends with commit markers (the delayed message to
	// test/counter/bob, written once it is due): a caught-up partition has
	// its committed offset below the LSO and must still show no lag.
	eventually(t, func() string {
		parts = partitionsJSON{}
		getJSON(t, a.url+"/v1/console/partitions", &parts)
		for _, p := range parts.Partitions {
			if p.Owner != members[0] || p.ClientID != "stateloop-console" || !p.LagExact || p.Lag != 0 {
				return fmt.Sprintf("partition %s/%d: %+v, want owned by %s, exact lag 0", p.Topic, p.Partition, p, members[0])
			}
		}
		for _, p := range parts.Partitions {
			if p.Kind == "loop" && p.Committed >= 0 && p.LSO > p.Committed {
				return ""
			}
		}
		return fmt.Sprintf("partitions: %+v, want a loop partition whose LSO is above its committed offset (a trailing commit marker)", parts.Partitions)
	})

	var dl deadLettersJSON
	getJSON(t, a.url+"/v1/console/dead-letters?n=5", &dl)
	if dl.Topic != "console-dlq" || len(dl.Records) != 1 {
		t.Fatalf("dead letters: %+v, want one record in console-dlq", dl)
	}
	d := dl.Records[0]
	if !strings.Contains(d.Reason, "unhandled message type") || d.FunctionType != "test/counter" || d.FunctionID != "mallory" ||
		d.Source == nil || d.Source.Topic != "console-loop" || d.Message == nil || d.Message.Type != "test/bogus" ||
		d.Message.Value != "poison" || d.Message.Target != "test/counter/mallory" || !strings.HasPrefix(d.Message.Caller, "stateloop/http/console-test/") {
		t.Errorf("dead letter: %+v %+v, want the unhandled test/bogus message \"poison\" to test/counter/mallory from the loop topic", d, d.Message)
	}

	for _, tc := range []struct {
		name, path string
		status     int
		says       string
	}{
		{"page", "/", 200, `<section id="lookup"`},
		{"script", "/console/console.js", 200, "v1/console/partitions"},
		{"no index under /console", "/console/index.html", 404, ""},
		{"bad n", "/v1/console/dead-letters?n=0", 400, "want a number from 1 to 200"},
		{"unknown path", "/nothing-here", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(a.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(b.String(), tc.says) {
				t.Errorf("GET %s: %d %.200q, want %d with %q", tc.path, resp.StatusCode, b.String(), tc.status, tc.says)
			}
		})
	}
}

// TestConsoleRendersInHeadlessChromium loads the console in headless
// Chromium (Debian's chromium package, installed by scripts/chromium.sh if
// missing) and checks the DOM after its script has called the API, then
// takes a screenshot. --dump-dom cannot click, so the state lookup, the
// ids and the delayed messages are driven by ?lookup=, ?ids= and ?timers=.
func TestConsoleRendersInHeadlessChromium(t *testing.T) {
	chromium := chromiumPath(t)
	a := startConsoleApp(t)
	a.populate(t)
	a.waitSettled(t)
	member := groupMembers(t, a.brokers, "console")[0]

	dom := runChromium(t, chromium, "--dump-dom", a.srv.URL+"/?lookup=test/counter/alice&ids=test/counter&timers=test/counter/alice")
	for _, tc := range []struct {
		section, state string
		shows          []string
	}{
		{"rates", "loaded", []string{`<tr class="rate" data-type="test/counter">`, "console-test"}},
		{"ids", "loaded", []string{`data-id="alice"`, `data-id="bob"`, "2 ids with state"}},
		{"timers", "loaded", []string{"No delayed messages of <code>test/counter/alice</code> are waiting."}},
		{"functions", "loaded", []string{"test/counter", "dyn/echo", "console-names", `<code class="namespace">dyn/*</code>`}},
		{"partitions", "loaded", []string{member, "stateloop-console", "console-loop", "console-names"}},
		{"dead-letters", "loaded", []string{"unhandled message type", "test/counter/mallory", "test/bogus", "poison"}},
		{"lookup", "found", []string{"test/counter/alice", greeting, "io.statefun.types/int"}},
	} {
		sec, state := section(dom, tc.section)
		if state != tc.state {
			t.Errorf("section %s: data-state %q, want %q:\n%s", tc.section, state, tc.state, sec)
			continue
		}
		for _, s := range tc.shows {
			if !strings.Contains(sec, s) {
				t.Errorf("section %s does not show %q:\n%s", tc.section, s, sec)
			}
		}
	}
	if sec, _ := section(dom, "partitions"); strings.Contains(sec, "unassigned") {
		t.Errorf("section partitions shows an unassigned partition:\n%s", sec)
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "console.png")
	runChromium(t, chromium, "--screenshot="+shot, "--window-size=1280,900", a.srv.URL+"/?lookup=test/counter/alice")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s does not decode as PNG: %v", shot, err)
	}
	colors := make(map[[4]uint32]bool)
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y && len(colors) <= 16; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			r, g, b, al := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, b, al}] = true
		}
	}
	if fi.Size() < 20<<10 || bounds.Dx() != 1280 || bounds.Dy() != 900 || len(colors) <= 16 {
		t.Errorf("screenshot %s: %d bytes, %v, %d colors; want a 1280x900 page of at least 20 KB with more than 16 colors", shot, fi.Size(), bounds.Size(), len(colors))
	}
	t.Logf("screenshot: %s (%d bytes)", shot, fi.Size())
	if dir := os.Getenv("STATELOOP_SCREENSHOT_DIR"); dir != "" {
		if b, err := os.ReadFile(shot); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "console.png"), b, 0o644); err != nil {
				t.Errorf("STATELOOP_SCREENSHOT_DIR: %v", err)
			}
		}
	}
}

// TestConsoleWithATokenInHeadlessChromium: on a listener with a token
// (issue 10, item 8) the console takes the token once from the URL
// fragment and shows the application with it; without the token it asks
// for it, and with a wrong one it says that the token was refused.
func TestConsoleWithATokenInHeadlessChromium(t *testing.T) {
	chromium := chromiumPath(t)
	const token = "console-token-0123456789abcdef"
	a := startConsoleAppWith(t, token)
	a.populate(t)
	a.waitSettled(t)

	dom := runChromium(t, chromium, "--dump-dom", a.srv.URL+"/?lookup=test/counter/alice#token="+token)
	for _, tc := range []struct{ section, state, shows string }{
		{"functions", "loaded", "test/counter"},
		{"dead-letters", "loaded", "test/counter/mallory"},
		{"partitions", "loaded", "console-loop"},
		{"lookup", "found", greeting},
		{"rates", "loaded", "test/counter"},
	} {
		if sec, state := section(dom, tc.section); state != tc.state || !strings.Contains(sec, tc.shows) {
			t.Errorf("with the token in the fragment: section %s has data-state %q, want %q showing %q:\n%s", tc.section, state, tc.state, tc.shows, sec)
		}
	}
	if sec, _ := section(dom, "auth"); !strings.Contains(sec, "hidden") {
		t.Errorf("with the token in the fragment: the token form shows:\n%s", sec)
	}

	for _, tc := range []struct{ name, fragment, state, says string }{
		{"no token", "", "needed", "needs its token"},
		{"a wrong token", "#token=not-the-console-token-0123", "rejected", "refused the token"},
	} {
		dom := runChromium(t, chromium, "--dump-dom", a.srv.URL+"/?lookup=test/counter/alice"+tc.fragment)
		if sec, state := section(dom, "auth"); state != tc.state || strings.Contains(sec, " hidden") || !strings.Contains(sec, tc.says) {
			t.Errorf("%s: section auth has data-state %q, want %q, shown, saying %q:\n%s", tc.name, state, tc.state, tc.says, sec)
		}
		if sec, state := section(dom, "lookup"); state == "found" || strings.Contains(sec, greeting) {
			t.Errorf("%s: the lookup shows the state:\n%s", tc.name, sec)
		}
	}
}

// chromiumPath returns the browser that scripts/chromium.sh finds or
// installs.
func chromiumPath(t *testing.T) string {
	t.Helper()
	start := time.Now()
	var stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "chromium.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	lines := strings.Fields(string(out))
	if err != nil || len(lines) == 0 {
		t.Fatalf("this test renders the console in Chromium, and scripts/chromium.sh could not find or install it (%v):\n%s\n"+
			"Install Debian's chromium package (apt-get install chromium), or set CHROMIUM to a Chromium or Chrome binary.", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("scripts/chromium.sh (%v):\n%s", time.Since(start).Round(time.Second), stderr.String())
	}
	return lines[len(lines)-1]
}

// runChromium runs headless Chromium with a fresh profile and returns its
// stdout. The virtual time budget lets the page's script fetch the API
// before the DOM is dumped or the screenshot taken.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	what := args[0]
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
		"--user-data-dir=" + t.TempDir(), "--no-first-run", "--disable-extensions", "--hide-scrollbars"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("chromium %s: %v", what, time.Since(start).Round(time.Millisecond))
	return stdout.String()
}

var sectionTag = regexp.MustCompile(`<section id="([^"]+)"[^>]*?data-state="([^"]*)"[^>]*>`)

// section returns the HTML of the console's section with the given id
// and its data-state, which the page's script sets once it has loaded.
func section(dom, id string) (html, state string) {
	for _, m := range sectionTag.FindAllStringSubmatchIndex(dom, -1) {
		if dom[m[2]:m[3]] != id {
			continue
		}
		rest := dom[m[0]:]
		if end := strings.Index(rest, "</section>"); end >= 0 {
			rest = rest[:end]
		}
		return rest, dom[m[4]:m[5]]
	}
	return "", ""
}

// TestConsoleLagCountsCommittedRecordsOnly pins how the lag is counted:
// committed records between the group's offset and the LSO, so commit
// and abort markers, aborted records and an open transaction do not
// count, as they would against the high water mark or in offsets.
func TestConsoleLagCountsCommittedRecordsOnly(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo := topology.Topology{App: "idle", Partitions: 4, Functions: []functions.TypeName{"test/counter"}}
	api, err := httpapi.New(httpapi.Config{Brokers: brokers, Topology: topo, Instance: "lag-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = api.Run(ctx) }()
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done; api.Close() })

	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Transaction.ID = "lag-test"
	sc.Net.MaxOpenRequests = 1
	prod, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	txn := func(n int, commit bool) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "idle-loop", Partition: 0, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
		}
		if !commit {
			return
		}
		if err := prod.CommitTxn(); err != nil {
			t.Fatal(err)
		}
	}
	txn(3, true) // offsets 0-2, marker 3
	txn(2, true) // offsets 4-5, marker 6
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "idle-loop", Partition: 0, Value: sarama.StringEncoder("x")}); err != nil {
		t.Fatal(err)
	}
	if err := prod.AbortTxn(); err != nil { // offset 7, abort marker 8
		t.Fatal(err)
	}
	txn(1, false) // offset 9, open

	lagOf := func() (p0 struct {
		Committed, LSO, HWM, Lag int64
		LagExact                 bool
	}, sum int64) {
		var parts struct {
			Partitions []struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Committed int64  `json:"committed"`
				LSO       int64  `json:"lso"`
				HWM       int64  `json:"hwm"`
				Lag       int64  `json:"lag"`
				LagExact  bool   `json:"lag_exact"`
				Error     string `json:"error"`
			} `json:"partitions"`
			Lag int64 `json:"lag"`
		}
		if st := getJSON(t, srv.URL+"/v1/console/partitions", &parts); st != 200 || len(parts.Partitions) != 4 {
			t.Fatalf("partitions: %d %+v, want the 4 loop partitions", st, parts)
		}
		q := parts.Partitions[0]
		if q.Topic != "idle-loop" || q.Partition != 0 || q.Error != "" {
			t.Fatalf("partitions[0]: %+v, want idle-loop/0 without error", q)
		}
		p0.Committed, p0.LSO, p0.HWM, p0.Lag, p0.LagExact = q.Committed, q.LSO, q.HWM, q.Lag, q.LagExact
		return p0, parts.Lag
	}
	p0, sum := lagOf()
	if p0.Committed != -1 || p0.LSO != 9 || p0.HWM != 10 || p0.Lag != 5 || !p0.LagExact || sum != 5 {
		t.Errorf("no committed offset: idle-loop/0 %+v, total lag %d; want committed -1, LSO 9, HWM 10 and an exact lag of 5 records", p0, sum)
	}

	// the group commits offset 3 (the first marker): records 4 and 5 remain
	client := kafkatest.Client(t, brokers)
	coord, err := client.Coordinator("idle")
	if err != nil {
		t.Fatal(err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: "idle", ConsumerGroupGeneration: -1, RetentionTime: -1}
	req.AddBlock("idle-loop", 0, 3, 0, "")
	resp, err := coord.CommitOffset(req)
	if err != nil || !errors.Is(resp.Errors["idle-loop"][0], sarama.ErrNoError) {
		t.Fatalf("commit offset 3 of idle-loop/0 for group idle: %v %v", resp, err)
	}
	p0, _ = lagOf()
	if p0.Committed != 3 || p0.Lag != 2 || !p0.LagExact {
		t.Errorf("committed 3: idle-loop/0 %+v, want an exact lag of 2 records", p0)
	}
}

// screenshotDir is where the browser tests save their screenshots:
// STATELOOP_SCREENSHOT_DIR if set (docs/images has the ones of the docs),
// else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("STATELOOP_SCREENSHOT_DIR"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// checkScreenshot fails the test unless png decodes as a PNG image at
// least w x h pixels in size with more than 16 colours.
func checkScreenshot(t *testing.T, path string, data []byte, w, h int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s does not decode as PNG: %v", path, err)
	}
	colors := make(map[[4]uint32]bool)
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y && len(colors) <= 16; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			r, g, b, al := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, b, al}] = true
		}
	}
	if bounds.Dx() < w || bounds.Dy() < h || len(colors) <= 16 {
		t.Errorf("screenshot %s: %v, %d colors; want at least %dx%d with more than 16 colors", path, bounds.Size(), len(colors), w, h)
	}
	t.Logf("screenshot: %s (%d bytes, %v)", path, len(data), bounds.Size())
}

// TestConsoleOperatesTheApplicationInHeadlessChromium drives the
// console's forms and buttons in headless Chromium (issue 13, item 2):
// the send form, whose reply and message then show in the rates, the ids
// of the type (paged) and the address's state and delayed messages (one,
// then cancelled with its button); and a
// dead letter replayed with its button, after which it is marked
// replayed and the function's state has changed once, however often the
// replay is asked for again. Each view is saved as a screenshot.
func TestConsoleOperatesTheApplicationInHeadlessChromium(t *testing.T) {
	chromium := chromiumPath(t)
	a := startConsoleApp(t)
	a.populate(t)
	a.waitSettled(t)
	// 60 more ids, so the ids of test/counter take two pages of 50
	st := string(functions.StringType.Name())
	for i := range 60 {
		if r := post(t, fmt.Sprintf("%s/v1/functions/test/counter/user-%02d", a.url, i), st, str(t, "hi")); r.status != http.StatusAccepted {
			t.Fatalf("message to user-%02d: %d %s", i, r.status, r.body)
		}
	}
	eventually(t, func() string {
		var ids struct {
			Total int `json:"total"`
		}
		if code := getJSON(t, a.url+"/v1/console/ids/test/counter?n=1", &ids); code != 200 || ids.Total != 62 {
			return fmt.Sprintf("ids of test/counter: %d %+v, want 62 (alice, bob and user-00 to user-59)", code, ids)
		}
		return ""
	})
	dir := screenshotDir(t)
	b := startBrowser(t, chromium, 1280, 900)
	b.open(a.srv.URL + "/")
	b.waitFor("the console to load", `document.querySelector("#rates").dataset.state === "loaded" && document.querySelector("#dead-letters").dataset.state === "loaded"`)

	// rates: test/counter was invoked for alice (3), bob and the 60 users
	rateOf := func(fn, col string) string {
		return b.text(fmt.Sprintf(`#rate-table tr[data-type=%q] td.%s`, fn, col))
	}
	if got := rateOf("test/counter", "invocations"); got != "64" {
		t.Errorf("rates: test/counter invocations %q, want 64:\n%s", got, b.text("#rates"))
	}

	// send a message with the form; it waits for the reply
	b.do(`document.querySelector("#send-type").value = "test/counter";
		document.querySelector("#send-id").value = "carol";
		document.querySelector("#send-message-type").value = "io.statefun.types/string";
		document.querySelector("#send-value").value = "remind me";
		document.querySelector("#send-wait").checked = true;
		document.querySelector("#send-form").requestSubmit();`)
	b.waitFor("the reply", `document.querySelector("#send").dataset.state !== "sending" && document.querySelector("#send").dataset.state !== "idle"`)
	if state, reply := b.text("#send-result"), b.text("#send-reply"); !strings.Contains(reply, "remind me #1") || !strings.Contains(reply, "io.statefun.types/string") {
		t.Errorf("send form: the reply shows %q (section: %q), want remind me #1 of type io.statefun.types/string", reply, state)
	}
	checkScreenshot(t, "console-send.png", b.screenshot("#send", filepath.Join(dir, "console-send.png")), 300, 100)

	// the message shows in the rates: 65 invocations, at a rate above 0
	b.waitFor("the rates to count carol's message", `(() => { const r = document.querySelector('#rate-table tr[data-type="test/counter"]');
		if (!r) { document.querySelector("#refresh").click(); return false; }
		const ok = r.querySelector("td.invocations").innerText === "65" && !["–", "0"].includes(r.querySelector("td.invocations-rate").innerText);
		if (!ok) document.querySelector("#refresh").click();
		return ok; })()`)
	checkScreenshot(t, "console-rates.png", b.screenshot("#rates", filepath.Join(dir, "console-rates.png")), 300, 100)

	// the ids of test/counter: 63, in two pages
	b.do(`document.querySelector("#ids-type").value = "test/counter"; document.querySelector("#ids-form").requestSubmit();`)
	b.waitFor("the ids", `document.querySelector("#ids").dataset.state === "loaded"`)
	var page1 []string
	b.eval(`[...document.querySelectorAll("#id-table tr.id")].map((r) => r.dataset.id)`, &page1)
	if len(page1) != 50 || page1[0] != "alice" || page1[1] != "bob" || page1[2] != "carol" || page1[49] != "user-46" ||
		!strings.Contains(b.text("#ids .pager"), "63 ids with state") {
		t.Errorf("ids, first page: %v, %q; want 50 from alice, bob, carol to user-46 of 63", page1, b.text("#ids .pager"))
	}
	checkScreenshot(t, "console-ids.png", b.screenshot("#ids", filepath.Join(dir, "console-ids.png")), 300, 200)
	b.do(`document.querySelector("#ids-next").click();`)
	b.waitFor("the second page of ids", `document.querySelector("#ids").dataset.state === "loaded" && document.querySelector("#ids-first")`)
	var page2 []string
	b.eval(`[...document.querySelectorAll("#id-table tr.id")].map((r) => r.dataset.id)`, &page2)
	if len(page2) != 13 || page2[0] != "user-47" || page2[12] != "user-59" || b.text("#ids-next") != "" {
		t.Errorf("ids, second page: %v, want the 13 from user-47 to user-59 and no next page", page2)
	}

	// carol's state and delayed message, from her row of the first page
	b.do(`document.querySelector("#ids-first").click();`)
	b.waitFor("the first page again", `document.querySelector('#id-table tr[data-id="carol"]')`)
	b.do(`document.querySelector('#id-table tr[data-id="carol"] button.look-up').click();`)
	b.waitFor("carol's state", `document.querySelector("#lookup").dataset.state === "found"`)
	if got := b.text(`#state-table tr[data-name="last"] td.value`); got != "remind me" {
		t.Errorf("carol's state: last = %q, want remind me:\n%s", got, b.text("#lookup"))
	}
	b.do(`document.querySelector('#id-table tr[data-id="carol"] button.timers-of').click();`)
	b.waitFor("carol's delayed messages", `document.querySelector("#timers").dataset.state === "loaded"`)
	var timers []string
	b.eval(`[...document.querySelectorAll("#timer-table tr.timer")].map((r) => r.innerText)`, &timers)
	if len(timers) != 1 || !strings.Contains(timers[0], "test/counter/carol") || !strings.Contains(timers[0], "reminder") || !strings.Contains(timers[0], "auto:") {
		t.Errorf("carol's delayed messages: %q, want the reminder to test/counter/carol with a token auto:...", timers)
	}
	checkScreenshot(t, "console-timers.png", b.screenshot("#timers", filepath.Join(dir, "console-timers.png")), 300, 100)
	// by type: the same one message (no other address has one)
	b.do(`document.querySelector("#timers-id").value = ""; document.querySelector("#timers-form").requestSubmit();`)
	b.waitFor("the delayed messages of test/counter", `document.querySelector("#timers").dataset.state === "loaded" && document.querySelector("#timers-id").value === ""`)
	if n := b.text("#timer-table tbody"); strings.Count(n, "reminder") != 1 {
		t.Errorf("delayed messages of test/counter: %q, want carol's one", n)
	}
	// cancelled with its button: gone from the console and from Kafka
	b.do(`document.querySelector("#timer-table button.cancel-timer").click();`)
	b.waitFor("the reminder to be cancelled", `document.querySelector("#timers").dataset.state === "loaded" && !document.querySelector("#timer-table")`)
	var left struct {
		Timers []any `json:"timers"`
	}
	if code := getJSON(t, a.url+"/v1/timers?type=test/counter", &left); code != 200 || len(left.Timers) != 0 {
		t.Errorf("delayed messages of test/counter after the cancel: %d %+v, want none", code, left)
	}

	// a failing message goes to the dead letters and shows as failures
	var failuresBefore int
	fmt.Sscan(rateOf("test/counter", "failures"), &failuresBefore) // mallory's message, of a type test/counter does not handle
	a.broken.Store(true)
	b.do(`document.querySelector("#send-id").value = "dave";
		document.querySelector("#send-value").value = "flaky";
		document.querySelector("#send-wait").checked = false;
		document.querySelector("#send-form").requestSubmit();`)
	b.waitFor("dave's message to be accepted", `document.querySelector("#send").dataset.state === "accepted"`)
	deadRow := `[...document.querySelectorAll("#dead-letter-table tr.dead-letter")].find((r) => r.innerText.includes("test/counter/dave"))`
	b.waitFor("dave's dead letter", `(() => { const r = `+deadRow+`; if (!r) document.querySelector("#refresh").click(); return r && r.querySelector("button.replay"); })()`)
	if got := b.text(`#dead-letter-table`); !strings.Contains(got, "broken for now") {
		t.Errorf("dead letters: %q, want dave's with the function's error", got)
	}
	// the attempt and its one retry failed; the message is the second dead letter of test/counter
	b.waitFor("the rates to count dave's failures", fmt.Sprintf(`(() => { const r = document.querySelector('#rate-table tr[data-type="test/counter"]');
		const ok = r && r.querySelector("td.failures").innerText === "%d" && r.querySelector("td.dead-letters").innerText === "2";
		if (!ok) document.querySelector("#refresh").click();
		return ok; })()`, failuresBefore+2))
	a.broken.Store(false)

	// replay it with its button: delivered once, then marked replayed
	b.eval(deadRow+`.querySelector("button.replay").click()`, nil)
	b.waitFor("the replay's outcome", `document.querySelector("#dead-letter-table .replay-outcome") || `+deadRow+`.querySelector(".replayed")`)
	b.waitFor("dave's dead letter marked replayed", `(() => { const r = `+deadRow+`; const ok = r && r.querySelector(".replayed") && r.querySelector(".replayed").innerText.startsWith("replayed 20");
		if (!ok) document.querySelector("#refresh").click(); return ok; })()`)
	checkScreenshot(t, "console-dead-letters.png", b.screenshot("#dead-letters", filepath.Join(dir, "console-dead-letters.png")), 600, 100)
	daveCount := func() any {
		var s struct {
			State map[string]struct {
				Value any `json:"value"`
			} `json:"state"`
		}
		if code := getJSON(t, a.url+"/v1/state/test/counter/dave", &s); code != 200 {
			return code
		}
		return fmt.Sprint(s.State[counted.Name()].Value, " ", s.State["last"].Value)
	}
	eventually(t, func() string {
		if got := daveCount(); got != "1 flaky" {
			return fmt.Sprintf("dave's state after the replay: %v, want n 1, last flaky", got)
		}
		return ""
	})
	// asked again, through the API the button uses: not delivered again
	var ref string
	b.eval(deadRow+`.dataset.ref`, &ref)
	var again struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	resp := postJSON(t, a.url+"/v1/dead-letters/replay", fmt.Sprintf(`{"refs":[%q]}`, ref), &again)
	if resp != 200 || len(again.Results) != 1 || again.Results[0].Status != "skipped" {
		t.Errorf("replaying %s again: %d %+v, want skipped", ref, resp, again)
	}
	b.do(`document.querySelector("#lookup-type").value = "test/counter"; document.querySelector("#lookup-id").value = "dave"; document.querySelector("#lookup-form").requestSubmit();`)
	b.waitFor("dave's state", `document.querySelector("#lookup").dataset.state === "found" && document.querySelector("#lookup-address").innerText === "test/counter/dave"`)
	time.Sleep(500 * time.Millisecond) // a second delivery would have had time to commit
	if got := daveCount(); got != "1 flaky" {
		t.Errorf("dave's state after a second replay: %v, want n 1, last flaky (delivered once)", got)
	}
	if got := b.text(`#state-table tr[data-name="n"] td.value`); got != "1" {
		t.Errorf("console: dave's n = %q, want 1", got)
	}
	b.do(`document.querySelector("#refresh").click();`)
	b.waitFor("the rates", `document.querySelector("#rates").dataset.state === "loaded"`)
	b.eval(`window.scrollTo(0, 0)`, nil)
	checkScreenshot(t, "console-operate.png", b.screenshot("body", filepath.Join(dir, "console-operate.png")), 1280, 900)
}

// postJSON posts a JSON body and decodes the answer into v; it returns
// the status.
func postJSON(t *testing.T, url, body string, v any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("POST %s: %d, body does not decode: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode
}

// TestConsoleActionsNeedTheTokenAndRefuseBadInput: the console's new
// endpoints (rates, ids, the send form) and the operator's endpoints its
// buttons call follow the listener's access rules, and answer bad input
// with what is wrong; the send form parses the value by its type and
// returns a reply as JSON.
func TestConsoleActionsNeedTheTokenAndRefuseBadInput(t *testing.T) {
	const token = "console-actions-token-0123456789"
	a := startConsoleAppWith(t, token)
	a.populate(t)
	a.waitSettled(t)
	sendBody := `{"type":"io.statefun.types/string","value":"hey"}`
	for _, tc := range []struct {
		name, method, path, body string
		header                   http.Header
	}{
		{"rates", "GET", "/v1/console/rates", "", nil},
		{"ids", "GET", "/v1/console/ids/test/counter", "", nil},
		{"send", "POST", "/v1/console/send/test/counter/zed", sendBody, nil},
		{"replay", "POST", "/v1/dead-letters/replay", `{"all":true}`, nil},
		{"timers", "GET", "/v1/timers?type=test/counter", "", nil},
		{"cancel", "DELETE", "/v1/timers/test/counter/zed", "", nil},
		{"wrong token", "POST", "/v1/console/send/test/counter/zed", sendBody, http.Header{"Authorization": {"Bearer not-the-token-0123456789abc"}}},
	} {
		if r := request(t, tc.method, a.srv.URL+tc.path, tc.header, tc.body); r.status != http.StatusUnauthorized {
			t.Errorf("%s without the token: %s %s: %d %s, want 401", tc.name, tc.method, tc.path, r.status, r.body)
		}
	}
	// the token given by another site's page: refused all the same
	cross := http.Header{"Authorization": {"Bearer " + token}, "Sec-Fetch-Site": {"cross-site"}}
	if r := request(t, "POST", a.srv.URL+"/v1/console/send/test/counter/zed", cross, sendBody); r.status != http.StatusForbidden {
		t.Errorf("send from another site's page: %d %s, want 403", r.status, r.body)
	}
	// none of them reached test/counter/zed
	if code := getJSON(t, a.url+"/v1/state/test/counter/zed", &struct{}{}); code != http.StatusNotFound {
		t.Errorf("state of test/counter/zed after the refused sends: %d, want 404", code)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"ids: n too large", "GET", "/v1/console/ids/test/counter?n=501", "", 400, "want a number from 1 to 500"},
		{"ids: not a type of the app", "GET", "/v1/console/ids/other/thing", "", 404, "not a function of application console"},
		{"ids: a type without a table", "GET", "/v1/console/ids/dyn/never", "", 404, "has no state yet"},
		{"ids: a page", "GET", "/v1/console/ids/test/counter?n=1&after=alice", "", 200, `"ids":["bob"],"total":2`},
		{"ids: a prefix", "GET", "/v1/console/ids/test/counter?prefix=al", "", 200, `"ids":["alice"],"total":1}`},
		{"send: not JSON", "POST", "/v1/console/send/test/counter/zed", "hey", 400, "send JSON like"},
		{"send: an unknown field", "POST", "/v1/console/send/test/counter/zed", `{"type":"io.statefun.types/string","text":"x"}`, 400, `unknown field \"text\"`},
		{"send: a bad type name", "POST", "/v1/console/send/test/counter/zed", `{"type":"nonamespace","value":"x"}`, 400, "want namespace/name"},
		{"send: a value not of its type", "POST", "/v1/console/send/test/counter/zed", `{"type":"io.statefun.types/int","value":"forty"}`, 400, `\"forty\" is not a valid io.statefun.types/int`},
		{"send: not a type of the app", "POST", "/v1/console/send/other/thing/zed", sendBody, 404, "not a function of application console"},
		{"send: a bad wait", "POST", "/v1/console/send/test/counter/zed?wait=forever", sendBody, 400, "wait=forever"},
		{"send and wait", "POST", "/v1/console/send/test/counter/zed?wait=20s", sendBody, 200,
			`{"address":"test/counter/zed","type":"io.statefun.types/string","value":"hey #1","replier":"test/counter/zed"}`},
		{"send", "POST", "/v1/console/send/test/counter/zed", sendBody, 202, `"topic":"console-loop"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, tc.method, a.url+tc.path, nil, tc.body)
			if r.status != tc.status || !strings.Contains(r.body, tc.says) {
				t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.path, r.status, r.body, tc.status, tc.says)
			}
		})
	}
	type rateJSON struct {
		Type        string  `json:"type"`
		Invocations float64 `json:"invocations"`
		Failures    float64 `json:"failures"`
		DeadLetters float64 `json:"dead_letters"`
	}
	var rates struct {
		Instance  string     `json:"instance"`
		Functions []rateJSON `json:"functions"`
	}
	eventually(t, func() string {
		getJSON(t, a.url+"/v1/console/rates", &rates)
		// alice 3, bob, zed 2; mallory's message of a type it does not handle failed once
		i := slices.IndexFunc(rates.Functions, func(f rateJSON) bool { return f.Type == "test/counter" })
		if rates.Instance != "console-test" || i < 0 || rates.Functions[i].Invocations != 6 || rates.Functions[i].Failures != 1 || rates.Functions[i].DeadLetters != 1 {
			return fmt.Sprintf("rates: %+v, want test/counter with 6 invocations, 1 failure, 1 dead letter", rates)
		}
		return ""
	})
}
