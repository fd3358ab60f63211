package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/ops"
	"github.com/stateloop/stateloop/internal/opstest"
	"github.com/stateloop/stateloop/internal/opstest/opsapp"
)

const opsToken = "0123456789abcdef-ops-token"

// opsAPI runs the opstest application with an HTTP listener that needs
// opsToken.
type opsAPI struct {
	app *opsapp.App
	url string
}

func startOpsAPI(t *testing.T, name string) opsAPI {
	t.Helper()
	return startOpsAPIOn(t, kafkatest.StartKfake(t), name)
}

// startOpsAPIOn is startOpsAPI on brokers.
func startOpsAPIOn(t *testing.T, brokers []string, name string) opsAPI {
	t.Helper()
	a := opsapp.Start(t, brokers, name)
	url := serveAPI(t, httpapi.Config{Brokers: brokers, Topology: a.Topo, Instance: "ops-test", Token: opsToken})
	return opsAPI{app: a, url: url}
}

// do sends a request with the token and decodes a JSON answer into v.
func (o opsAPI) do(t *testing.T, method, path string, h http.Header, body string, v any) response {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+opsToken)
	r := request(t, method, o.url+path, h, body)
	if v != nil && r.status < 300 {
		if err := json.Unmarshal([]byte(r.body), v); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, r.status, r.body, err)
		}
	}
	return r
}

func TestOperatorAPINeedsTheToken(t *testing.T) {
	o := startOpsAPI(t, "opsauth")
	var cases []accessCase
	for _, p := range []struct{ method, path string }{
		{"GET", "/v1/describe"}, {"GET", "/v1/dead-letters"}, {"GET", "/v1/dead-letters/0/0"}, {"POST", "/v1/dead-letters/replay"},
		{"PUT", "/v1/state/ops/counter/x/n"}, {"DELETE", "/v1/state/ops/counter/x/n"}, {"DELETE", "/v1/state/ops/counter/x"},
		{"GET", "/v1/timers"}, {"DELETE", "/v1/timers/ops/counter/x/tok"}, {"DELETE", "/v1/timers/ops/counter/x"},
	} {
		cases = append(cases, accessCase{"no token " + p.method + " " + p.path, p.method, p.path, nil, 401},
			accessCase{"other site " + p.method + " " + p.path, p.method, p.path, http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403})
	}
	checkAccess(t, o.url, cases)
	if got := o.app.Emitted(t); len(got) != 0 {
		t.Errorf("refused requests changed something: %v", got)
	}
}

// TestOperatorAPIEditsStateInOrder sets, deletes and clears a counter's
// state over HTTP between messages to it, and checks the answers and
// what the counter counted.
func TestOperatorAPIEditsStateInOrder(t *testing.T) {
	checkOperatorAPIEditsStateInOrder(t, startOpsAPI(t, "opsstate"))
}

func checkOperatorAPIEditsStateInOrder(t *testing.T, o opsAPI) {
	o.app.Send(t, "s1", opstest.IncMsg{Seq: 1}, opstest.IncMsg{Seq: 2})
	o.app.WaitEmitted(t, "s1", 2)
	var st ops.StateView
	if r := o.do(t, "PUT", "/v1/state/ops/counter/s1/n", nil, "40", &st); r.status != 200 {
		t.Fatalf("PUT n: %d %s", r.status, r.body)
	}
	if st.Address != "ops/counter/s1" || st.Before["n"].Value != float64(2) || st.After["n"].Value != float64(40) || st.After["n"].Type != "io.statefun.types/long" {
		t.Errorf("PUT n answered %+v", st)
	}
	h := http.Header{httpapi.TypeHeader: {"io.statefun.types/string"}}
	st = ops.StateView{}
	if r := o.do(t, "PUT", "/v1/state/ops/counter/s1/note", h, "hi there", &st); r.status != 200 || st.After["note"].Value != "hi there" {
		t.Errorf("PUT note: %d %s", r.status, r.body)
	}
	o.app.Send(t, "s1", opstest.IncMsg{Seq: 3})
	if got := o.app.WaitEmitted(t, "s1", 3); got[2].N != 41 {
		t.Errorf("the message after the set counted %d, want 41", got[2].N)
	}
	st = ops.StateView{}
	if r := o.do(t, "DELETE", "/v1/state/ops/counter/s1/note", nil, "", &st); r.status != 200 || len(st.Before) != 2 || len(st.After) != 1 {
		t.Errorf("DELETE note: %d %s", r.status, r.body)
	}
	st = ops.StateView{}
	if r := o.do(t, "DELETE", "/v1/state/ops/counter/s1", nil, "", &st); r.status != 200 || len(st.After) != 0 || st.Before["n"].Value != float64(41) {
		t.Errorf("DELETE all: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name, method, path, typ, body string
		status                        int
		want                          string
	}{
		{"undeclared state", "PUT", "/v1/state/ops/counter/s1/nope", "io.statefun.types/long", "1", 422, `declares no state \"nope\"`},
		{"wrong type", "PUT", "/v1/state/ops/counter/s1/n", "io.statefun.types/string", "1", 422, "is of type io.statefun.types/long"},
		{"not a number", "PUT", "/v1/state/ops/counter/s1/n", "", "one", 422, "not a valid io.statefun.types/long"},
		{"unknown function type", "PUT", "/v1/state/ops/nobody/s1/n", "", "1", 404, "not a function of application"},
		{"bad type header", "PUT", "/v1/state/ops/counter/s1/n", "nonsense", "1", 400, "Stateloop-Type"},
	} {
		h := http.Header{}
		if tc.typ != "" {
			h.Set(httpapi.TypeHeader, tc.typ)
		}
		if r := o.do(t, tc.method, tc.path, h, tc.body, nil); r.status != tc.status || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, r.status, r.body, tc.status, tc.want)
		}
	}
}

// TestOperatorAPIListsAndReplaysDeadLetters dead-letters two messages,
// lists them, shows one, replays with a dry run, then for real (once),
// then again: skipped.
func TestOperatorAPIListsAndReplaysDeadLetters(t *testing.T) {
	checkOperatorAPIListsAndReplaysDeadLetters(t, startOpsAPI(t, "opsdlq"))
}

func checkOperatorAPIListsAndReplaysDeadLetters(t *testing.T, o opsAPI) {
	o.app.Broken.Store(true)
	o.app.Send(t, "r1", opstest.IncMsg{Seq: 1}, opstest.IncMsg{Seq: 2})
	o.app.WaitDeadLetters(t, 2)
	o.app.Broken.Store(false)
	var list struct {
		DeadLetters []struct {
			Ref          string                 `json:"ref"`
			Reason       string                 `json:"reason"`
			FunctionID   string                 `json:"function_id"`
			Replayed     string                 `json:"replayed"`
			Message      *struct{ Type string } `json:"message"`
			NotReplayble string                 `json:"not_replayable"`
		} `json:"dead_letters"`
	}
	if r := o.do(t, "GET", "/v1/dead-letters?type=ops/counter&reason=broken", nil, "", &list); r.status != 200 || len(list.DeadLetters) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	dl := list.DeadLetters[0]
	if dl.FunctionID != "r1" || dl.Message == nil || dl.Message.Type != "ops/inc" || dl.Replayed != "" || dl.NotReplayble != "" {
		t.Errorf("dead letter %+v", dl)
	}
	var one struct{ Ref, Reason string }
	if r := o.do(t, "GET", "/v1/dead-letters/"+dl.Ref, nil, "", &one); r.status != 200 || one.Ref != dl.Ref {
		t.Errorf("show %s: %d %s", dl.Ref, r.status, r.body)
	}
	if r := o.do(t, "GET", "/v1/dead-letters/0/999999", nil, "", nil); r.status != 404 {
		t.Errorf("show a dead letter that is not there: %d %s, want 404", r.status, r.body)
	}
	type results struct {
		Results []struct{ Ref, Address, Status, Error string } `json:"results"`
	}
	replay := func(body string, want string) {
		t.Helper()
		var res results
		if r := o.do(t, "POST", "/v1/dead-letters/replay", nil, body, &res); r.status != 200 || len(res.Results) != 2 {
			t.Fatalf("replay %s: %d %s", body, r.status, r.body)
		}
		for _, x := range res.Results {
			if x.Status != want || x.Address != "ops/counter/r1" {
				t.Errorf("replay %s: %+v, want %s", body, x, want)
			}
		}
	}
	replay(`{"id":"r1","dry_run":true}`, "dry-run")
	replay(`{"refs":["`+list.DeadLetters[0].Ref+`","`+list.DeadLetters[1].Ref+`"]}`, "replayed")
	if got := o.app.WaitEmitted(t, "r1", 2); got[0].Seq != 1 || got[1].Seq != 2 {
		t.Errorf("counted %v, want messages 1 and 2", got)
	}
	replay(`{"type":"ops/counter"}`, "skipped")
	// the body takes the list's filter "replayed" too (it was an unknown
	// field, 400)
	var none results
	if r := o.do(t, "POST", "/v1/dead-letters/replay", nil, `{"type":"ops/counter","replayed":"no"}`, &none); r.status != 200 || len(none.Results) != 0 {
		t.Errorf(`replay {"replayed":"no"} after the replays: %d %s, want none chosen`, r.status, r.body)
	}
	if r := o.do(t, "GET", "/v1/dead-letters?replayed=yes", nil, "", &list); r.status != 200 || len(list.DeadLetters) != 2 || list.DeadLetters[0].Replayed == "" {
		t.Errorf("replayed ones: %d %s", r.status, r.body)
	}
	for _, tc := range []struct{ body, want string }{
		{`{}`, "no dead letters chosen"},
		{`{"refs":["0/1"],"id":"x"}`, "not several"},
		{`{"from":3}`, "give partition too"},
		{`{"bogus":1}`, "unknown field"},
		{`{"replayed":"maybe"}`, "replayed=maybe"},
		// "all" with a filter was taken as the filter alone
		{`{"all":true,"type":"ops/counter"}`, "leave out the filter"},
	} {
		if r := o.do(t, "POST", "/v1/dead-letters/replay", nil, tc.body, nil); r.status != 400 || !strings.Contains(r.body, tc.want) {
			t.Errorf("replay %s: %d %s, want 400 with %q", tc.body, r.status, r.body, tc.want)
		}
	}
	if got := len(o.app.Emitted(t)["r1"]); got != 2 {
		t.Errorf("r1 counted %d messages, want 2 (each dead letter once)", got)
	}
}

func TestOperatorAPIListsAndCancelsTimersAndDescribes(t *testing.T) {
	o := startOpsAPI(t, "opstimers")
	o.app.Send(t, "t1", opstest.IncMsg{Seq: 1, Arm: []string{"a", "b"}, Delay: time.Hour})
	o.app.Send(t, "t2", opstest.IncMsg{Seq: 2, Arm: []string{"c"}, Delay: time.Hour})
	o.app.WaitEmitted(t, "t2", 1)
	type timers struct {
		Timers []struct {
			Sender, Token string
			Message       struct{ Target, Type string }
		} `json:"timers"`
	}
	var ts timers
	deadline := time.Now().Add(30 * time.Second)
	for len(ts.Timers) < 3 && time.Now().Before(deadline) {
		o.do(t, "GET", "/v1/timers", nil, "", &ts)
		time.Sleep(50 * time.Millisecond)
	}
	if len(ts.Timers) != 3 {
		t.Fatalf("timers %+v, want 3", ts)
	}
	if r := o.do(t, "GET", "/v1/timers?type=ops/counter&id=t1", nil, "", &ts); r.status != 200 || len(ts.Timers) != 2 || ts.Timers[0].Message.Target != "ops/counter/t1" {
		t.Errorf("timers of t1: %d %s", r.status, r.body)
	}
	if r := o.do(t, "DELETE", "/v1/timers/ops/counter/t1/a", nil, "", &ts); r.status != 200 || len(ts.Timers) != 1 || ts.Timers[0].Token != "a" {
		t.Errorf("cancel a: %d %s", r.status, r.body)
	}
	if r := o.do(t, "DELETE", "/v1/timers/ops/counter/t2", nil, "", &ts); r.status != 200 || len(ts.Timers) != 1 || ts.Timers[0].Token != "c" {
		t.Errorf("cancel all of t2: %d %s", r.status, r.body)
	}
	if r := o.do(t, "GET", "/v1/timers", nil, "", &ts); r.status != 200 || len(ts.Timers) != 1 || ts.Timers[0].Token != "b" {
		t.Errorf("timers left: %d %s, want b", r.status, r.body)
	}
	if r := o.do(t, "GET", "/v1/timers?id=t1", nil, "", nil); r.status != 400 {
		t.Errorf("timers by id without type: %d %s, want 400", r.status, r.body)
	}

	var d struct {
		App       string
		State     string
		Members   []struct{ Info *struct{ Instance string } }
		Functions []struct {
			Type  string
			State []struct{ Name, Type string }
		}
		Consumed []struct{ Topic, Owner string }
	}
	if r := o.do(t, "GET", "/v1/describe", nil, "", &d); r.status != 200 {
		t.Fatalf("describe: %d %s", r.status, r.body)
	}
	if d.App != "opstimers" || len(d.Members) != 1 || d.Members[0].Info == nil || len(d.Functions) != 1 || len(d.Functions[0].State) != 2 || len(d.Consumed) != 12 {
		t.Errorf("describe: %+v", d)
	}
}
