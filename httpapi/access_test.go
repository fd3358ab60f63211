package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
)

// accessCase is a request and the status it must get.
type accessCase struct {
	name   string
	method string
	path   string
	header http.Header
	status int
}

func checkAccess(t *testing.T, base string, cases []accessCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header.Clone()
			if h == nil {
				h = http.Header{}
			}
			body := ""
			if tc.method == http.MethodPost {
				h.Set(httpapi.TypeHeader, string(functions.StringType.Name()))
				body = str(t, "x")
			}
			r := request(t, tc.method, base+tc.path, h, body)
			if r.status != tc.status {
				t.Errorf("%s %s with %v: %d %.300s, want %d", tc.method, tc.path, tc.header, r.status, r.body, tc.status)
			}
		})
	}
}

// Regression test for issue 10, item 8: any web page open in the user's
// browser could send messages through the listener (a form POST) and
// trigger reads (an image GET), because the listener answered requests a
// browser sends for another site's page. They must be refused; programs,
// the console's own requests and opening the console from a link must
// not.
func TestCrossSiteBrowserRequestsAreRefused(t *testing.T) {
	srv, _ := startApp(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	self := "http://" + u.Host
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	send, state := "/v1/functions/test/quiet/x", "/v1/state/test/counter/x"
	checkAccess(t, srv.URL, []accessCase{
		{"form post from another site", "POST", send, hdr("Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"), 403},
		{"post from another site, older browser", "POST", send, hdr("Origin", "http://evil.example"), 403},
		{"post from a sandboxed page", "POST", send, hdr("Origin", "null"), 403},
		{"post from another port of the machine", "POST", send, hdr("Origin", "http://127.0.0.1:3000", "Sec-Fetch-Site", "same-site"), 403},
		{"image from another site", "GET", state, hdr("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"), 403},
		{"console API from another site", "GET", "/v1/console/app", hdr("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"), 403},
		{"a program", "POST", send, nil, 202},
		{"the console's own fetch", "POST", send, hdr("Origin", self, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"), 202},
		{"the console's own lookup", "GET", "/v1/console/app", hdr("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"), 200},
		{"typed into the address bar", "GET", "/v1/console/app", hdr("Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate"), 200},
		{"the console opened from another site's link", "GET", "/", hdr("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"), 200},
		{"health from anywhere", "GET", "/healthz", hdr("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors"), 200},
	})
}

// TestBearerTokenGuardsAllButHealthAndTheConsolePage: with a token,
// every request without it (a program, or a browser's form or image with
// no way to add the header) gets 401, except /healthz, /readyz, the
// console page and its files, and /metrics if it is open.
func TestBearerTokenGuardsAllButHealthAndTheConsolePage(t *testing.T) {
	const token = "0123456789abcdef-test-token"
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	srv, _ := startAppWith(t, httpapi.Config{MaxBody: 64, Token: token})
	var cases []accessCase
	for _, p := range []struct{ method, path string }{
		{"POST", "/v1/functions/test/quiet/x"}, {"GET", "/v1/state/test/counter/x"}, {"GET", "/v1/console/app"},
		{"GET", "/v1/console/partitions"}, {"GET", "/v1/console/dead-letters"}, {"GET", "/metrics"},
	} {
		cases = append(cases,
			accessCase{"no token " + p.path, p.method, p.path, nil, 401},
			accessCase{"wrong token " + p.path, p.method, p.path, bearer("not-the-token-0123456789"), 401},
			accessCase{"token as basic auth " + p.path, p.method, p.path, http.Header{"Authorization": {"Basic " + token}}, 401})
	}
	cases = append(cases,
		accessCase{"token: send", "POST", "/v1/functions/test/quiet/x", bearer(token), 202},
		accessCase{"token: state", "GET", "/v1/state/test/counter/nobody", bearer(token), 404},
		accessCase{"token: console API", "GET", "/v1/console/app", bearer(token), 200},
		accessCase{"token: metrics", "GET", "/metrics", bearer(token), 200},
		accessCase{"healthz", "GET", "/healthz", nil, 200},
		accessCase{"readyz", "GET", "/readyz", nil, 200},
		accessCase{"console page", "GET", "/", nil, 200},
		accessCase{"console script", "GET", "/console/console.js", nil, 200},
	)
	checkAccess(t, srv.URL, cases)

	open, _ := startAppWith(t, httpapi.Config{MaxBody: 64, Token: token, OpenMetrics: true})
	checkAccess(t, open.URL, []accessCase{
		{"open metrics", "GET", "/metrics", nil, 200},
		{"open metrics, state still closed", "GET", "/v1/state/test/counter/x", nil, 401},
	})
	if _, err := httpapi.New(httpapi.Config{Brokers: []string{"127.0.0.1:1"}, Instance: "x", Token: "two words"}); err == nil ||
		!strings.Contains(err.Error(), "white space") {
		t.Errorf("New with a token with a space: %v, want an error about white space", err)
	}
}

// TestForeignHostIsRefused: with AllowedHosts (as on a loopback
// listener), a request for another host name, as a DNS rebinding page
// sends, gets 421; the loopback names in any form pass.
func TestForeignHostIsRefused(t *testing.T) {
	srv, _ := startAppWith(t, httpapi.Config{MaxBody: 64, AllowedHosts: httpapi.LoopbackHosts()})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	host := func(h string) http.Header { return http.Header{"Host": {h}} }
	checkAccess(t, srv.URL, []accessCase{
		{"rebinding page", "GET", "/v1/state/test/counter/x", host("evil.example:" + port), 421},
		{"rebinding page, post", "POST", "/v1/functions/test/quiet/x", host("evil.example:" + port), 421},
		{"rebinding page, console", "GET", "/", host("evil.example"), 421},
		{"a name ending in localhost", "GET", "/v1/console/app", host("localhost.evil.example:" + port), 421},
		{"localhost", "GET", "/v1/console/app", host("localhost:" + port), 200},
		{"LOCALHOST.", "GET", "/v1/console/app", host("LOCALHOST.:" + port), 200},
		{"127.0.0.1", "POST", "/v1/functions/test/quiet/x", host("127.0.0.1:" + port), 202},
		{"::1", "GET", "/v1/console/app", host("[::1]:" + port), 200},
		{"health with any host", "GET", "/healthz", host("evil.example"), 200},
	})
}
