package app_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// Regression test for issue 13, item 6: a module.yaml with StateFun
// playground's HTTP ingress (io.statefun.playground.v1/ingress) was refused
// at start-up with a hint that did not mention --http. It is served by the
// HTTP listener: without --http on 127.0.0.1 and the ingress's port, with
// --http on that address; either way at the playground's paths, POST or PUT
// /{namespace}/{name}/{id} with Content-Type application/vnd.<type name>.
func TestPlaygroundIngressIsServedByTheHTTPListener(t *testing.T) {
	for _, tc := range []struct {
		name string
		http string // --http
		// wantAt says where the listener is, given the ingress's port
		wantAt   func(port int) string
		wantNote string
	}{
		{"without --http", "", func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }, "served by the HTTP listener on 127.0.0.1:"},
		{"with --http", "127.0.0.1:0", nil, "served by the HTTP listener of --http 127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			path := filepath.Join(t.TempDir(), "module.yaml")
			yaml := fmt.Sprintf("kind: io.statefun.playground.v1/ingress\nspec:\n  port: %d\n", port)
			if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			brokers := kafkatest.StartKfake(t)
			r := apptest.Start(t, app.Flags{Brokers: brokers, LogLevel: "error", HTTP: tc.http, ModuleFiles: []string{path}}, echoApp)
			r.WaitFor(t, "application echo ready", 30*time.Second)
			out := r.Out.String()
			if !strings.Contains(out, tc.wantNote) || !strings.Contains(out, "io.statefun.playground.v1/ingress") {
				t.Errorf("output lacks a note about the playground ingress saying %q:\n%s", tc.wantNote, out)
			}
			m := httpLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no HTTP listener in the output:\n%s", out)
			}
			if tc.wantAt != nil && m[1] != tc.wantAt(port) {
				t.Errorf("HTTP listener on %s, want %s (the ingress's port)", m[1], tc.wantAt(port))
			}
			for _, method := range []string{http.MethodPut, http.MethodPost} {
				req, err := http.NewRequest(method, "http://"+m[1]+"/test/echo/bob", strings.NewReader("hi by "+method))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/vnd.test/text")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("%s /test/echo/bob: %s, want 202 Accepted", method, resp.Status)
				}
				waitForRecord(t, kafkatest.Client(t, brokers), "out", "hi by "+method)
			}
		})
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
