package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
)

// Regression test for issue 13, item 6: the built-in types were protobuf
// on the wire in both directions, so `curl -d 41` sent bytes the function
// could not decode and a string reply came back as "\n\x06Alice!". With
// Content-Type application/json the body is JSON of the message's type,
// and the reply to a request that sent or accepts JSON is JSON too.
func TestBuiltinTypesAreJSONInAndOut(t *testing.T) {
	srv, _ := startApp(t)
	for _, tc := range []struct {
		name      string
		typ       functions.TypeName
		body      string
		headers   map[string]string // besides Stateloop-Type
		want      string            // the reply's body
		wantProto bool              // the reply is protobuf, not JSON
	}{
		{"string", functions.StringType.Name(), `"Alice"`, nil, `"Alice!"`, false},
		{"string with escapes", functions.StringType.Name(), `"caf\u00e9 <\"x\">"`, nil, `"café <\"x\">!"`, false},
		{"int", functions.IntType.Name(), `41`, nil, `42`, false},
		{"int, the least", functions.IntType.Name(), `-2147483648`, nil, `-2147483647`, false},
		{"long beyond a double's 53 bits", functions.LongType.Name(), `9007199254740993`, nil, `9007199254740994`, false},
		{"bool", functions.BoolType.Name(), `true`, nil, `false`, false},
		{"float", functions.FloatType.Name(), `1.25`, nil, `2.5`, false},
		{"float NaN", functions.FloatType.Name(), `"NaN"`, nil, `"NaN"`, false},
		{"double", functions.DoubleType.Name(), `0.1`, nil, `0.2`, false},
		{"double, white space around", functions.DoubleType.Name(), " 3\n", nil, `6`, false},
		{"double -Infinity", functions.DoubleType.Name(), `"-Infinity"`, nil, `"-Infinity"`, false},
		{"charset parameter", functions.IntType.Name(), `1`, map[string]string{"Content-Type": "application/json; charset=utf-8"}, `2`, false},
		{"Accept: application/json", functions.IntType.Name(), `7`, map[string]string{"Accept": "application/json"}, `8`, false},
		{"Accept: a list with application/json", functions.IntType.Name(), `7`, map[string]string{"Accept": "text/html, application/json;q=0.9"}, `8`, false},
		{"JSON in, Accept: protobuf", functions.IntType.Name(), `7`, map[string]string{"Accept": "application/vnd.io.statefun.types/int"}, `8`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.NewReplacer(" ", "-", "/", "-", ":", "", ",", "").Replace(tc.name)
			h := http.Header{httpapi.TypeHeader: {string(tc.typ)}, "Content-Type": {"application/json"}}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			r := postHeaders(t, srv.URL+"/v1/functions/test/typed/"+id+"?wait=10s", h, tc.body)
			if r.status != http.StatusOK || r.header.Get(httpapi.TypeHeader) != string(tc.typ) {
				t.Fatalf("POST %s %q: %d, type %q: %q; want 200 with a %s", tc.typ, tc.body, r.status, r.header.Get(httpapi.TypeHeader), r.body, tc.typ)
			}
			if tc.wantProto {
				if ct := r.header.Get("Content-Type"); ct != "application/vnd."+string(tc.typ) {
					t.Errorf("Content-Type %q, want application/vnd.%s", ct, tc.typ)
				}
				if r.body == tc.want || r.body == tc.want+"\n" {
					t.Errorf("the reply is JSON %q; the client accepts only protobuf", r.body)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if r.body != tc.want+"\n" {
				t.Errorf("reply %q, want %q", r.body, tc.want+"\n")
			}
		})
	}
}

// A reply is JSON when the client accepts it even if it sent protobuf
// (Content-Type application/vnd.<type>), and stays protobuf when it asked
// for neither.
func TestReplyIsJSONOnlyWhenTheClientSentOrAcceptsIt(t *testing.T) {
	srv, _ := startApp(t)
	st := string(functions.StringType.Name())
	r := postHeaders(t, srv.URL+"/v1/functions/test/typed/a?wait=10s",
		http.Header{"Content-Type": {"application/vnd." + st}, "Accept": {"application/json"}}, str(t, "hi"))
	if r.status != http.StatusOK || r.body != "\"hi!\"\n" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("protobuf in, Accept: application/json: %d %q (%s); want 200 \"hi!\" as JSON", r.status, r.body, r.header.Get("Content-Type"))
	}
	r = postHeaders(t, srv.URL+"/v1/functions/test/typed/b?wait=10s",
		http.Header{"Content-Type": {"application/vnd." + st}, "Accept": {"*/*"}}, str(t, "hi"))
	if r.status != http.StatusOK || r.body != str(t, "hi!") || r.header.Get("Content-Type") != "application/vnd."+st {
		t.Errorf("protobuf in, Accept: */*: %d %q (%s); want 200 with \"hi!\" in protobuf", r.status, r.body, r.header.Get("Content-Type"))
	}
}

func TestBadJSONForABuiltinTypeIs400(t *testing.T) {
	srv, _ := startApp(t)
	for _, tc := range []struct {
		typ        functions.TypeName
		body, says string
	}{
		{functions.StringType.Name(), `Alice`, `not JSON`},
		{functions.StringType.Name(), `42`, `want a JSON string, like "Alice"`},
		{functions.StringType.Name(), `"Alice`, `not JSON`},
		{functions.IntType.Name(), `"42"`, `want a JSON integer from -2147483648 to 2147483647`},
		{functions.IntType.Name(), `4.5`, `want a JSON integer from -2147483648 to 2147483647`},
		{functions.IntType.Name(), `2147483648`, `want a JSON integer from -2147483648 to 2147483647`},
		{functions.LongType.Name(), `9223372036854775808`, `want a JSON integer from -9223372036854775808 to 9223372036854775807`},
		{functions.LongType.Name(), `1e3`, `want a JSON integer`},
		{functions.BoolType.Name(), `"true"`, `want true or false`},
		{functions.BoolType.Name(), `1`, `want true or false`},
		{functions.FloatType.Name(), `1e39`, `want a JSON number in the range of a 32-bit float`},
		{functions.FloatType.Name(), `"1.5"`, `want a JSON number`},
		{functions.DoubleType.Name(), `1e400`, `want a JSON number`},
		{functions.DoubleType.Name(), `"Inf"`, `want a JSON number`},
		{functions.IntType.Name(), ``, `the body is empty`},
		{functions.IntType.Name(), `null`, `want a JSON integer`},
		{functions.IntType.Name(), `1 2`, `more after the value`},
		{functions.IntType.Name(), `[1]`, `want a JSON integer`},
	} {
		t.Run(string(tc.typ)+" "+tc.body, func(t *testing.T) {
			r := postHeaders(t, srv.URL+"/v1/functions/test/typed/bad", http.Header{httpapi.TypeHeader: {string(tc.typ)}, "Content-Type": {"application/json"}}, tc.body)
			var e struct {
				Error string `json:"error"`
			}
			if r.status != http.StatusBadRequest || json.Unmarshal([]byte(r.body), &e) != nil ||
				!strings.Contains(e.Error, tc.says) || !strings.Contains(e.Error, string(tc.typ)) {
				t.Errorf("got %d %s; want 400 with an error naming %s and saying %q", r.status, r.body, tc.typ, tc.says)
			}
		})
	}
}

// The JSON body of a type of the application's own (not a built-in type)
// is the message as it is: the function decodes it.
func TestJSONBodyOfAnApplicationTypeIsTheMessageAsItIs(t *testing.T) {
	srv, topo := startApp(t)
	const body = `{"itemId":"socks","quantity":2}`
	r := postHeaders(t, srv.URL+"/v1/functions/test/quiet/x", http.Header{httpapi.TypeHeader: {"shop/AddToCart"}, "Content-Type": {"application/json"}}, body)
	var res struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	}
	if r.status != http.StatusAccepted || json.Unmarshal([]byte(r.body), &res) != nil {
		t.Fatalf("got %d %s, want 202", r.status, r.body)
	}
	if m := loopMessage(t, srv.brokers, topo, res.Partition, res.Offset); m.TypeName() != "shop/AddToCart" || string(m.Bytes()) != body {
		t.Errorf("the message is %s %q, want shop/AddToCart %q", m.TypeName(), m.Bytes(), body)
	}
}
