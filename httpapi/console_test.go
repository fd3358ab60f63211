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
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// The console tests' application "console": test/counter counts the
// messages of each id and keeps the last one; dyn/echo, a type of the
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
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/counter", State: []functions.StateSpec{counted, lastMessage},
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
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
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	api, err := httpapi.New(httpapi.Config{Brokers: brokers, Topology: topo, Instance: "console-test", Ready: func() bool { return p.Stats().Ready }, Token: token})
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
	return consoleApp{srv: srv, url: trusted.URL, brokers: brokers, topo: topo}
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
// takes a screenshot. --dump-dom cannot click, so the state lookup is
// driven by ?lookup=.
func TestConsoleRendersInHeadlessChromium(t *testing.T) {
	chromium := chromiumPath(t)
	a := startConsoleApp(t)
	a.populate(t)
	a.waitSettled(t)
	member := groupMembers(t, a.brokers, "console")[0]

	dom := runChromium(t, chromium, "--dump-dom", a.srv.URL+"/?lookup=test/counter/alice")
	for _, tc := range []struct {
		section, state string
		shows          []string
	}{
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
