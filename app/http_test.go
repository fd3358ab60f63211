package app_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

var httpLine = regexp.MustCompile(`HTTP listener on http://([0-9.:]+) `)

// startHTTP runs the echo application on kfake with f's HTTP settings
// until it is ready, and returns the listener's address.
func startHTTP(t *testing.T, f app.Flags) (addr string, out *kafkatest.SyncBuffer) {
	t.Helper()
	f.Brokers, f.LogLevel = kafkatest.StartKfake(t), "error"
	r := apptest.Start(t, f, echoApp)
	r.WaitFor(t, "application echo ready", 30*time.Second)
	m := httpLine.FindStringSubmatch(r.Out.String())
	if m == nil {
		t.Fatalf("no HTTP listener address in the output:\n%s", r.Out)
	}
	return m[1], r.Out
}

// send posts a text message to test/echo/x with the Host and Authorization
// headers given (none if "") and returns the status.
func send(t *testing.T, addr, host, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/functions/test/echo/x", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Stateloop-Type", "test/text")
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// Regression test for issue 10, item 8: the listener on 127.0.0.1 answered
// requests for any Host, so a web page whose own name resolves to
// 127.0.0.1 (DNS rebinding) could read state and send messages. On a
// loopback address it must answer the loopback names only.
func TestHTTPListenerOnLoopbackRefusesForeignHosts(t *testing.T) {
	addr, _ := startHTTP(t, app.Flags{HTTP: "127.0.0.1:0"})
	_, port, _ := strings.Cut(addr, ":")
	if st := send(t, addr, "rebound.evil.example:"+port, ""); st != http.StatusMisdirectedRequest {
		t.Errorf("POST with Host rebound.evil.example: %d, want 421", st)
	}
	for _, h := range []string{"", "localhost:" + port} {
		if st := send(t, addr, h, ""); st != http.StatusAccepted {
			t.Errorf("POST with Host %q: %d, want 202", h, st)
		}
	}
}

// TestHTTPTokenFromAFileIsRequired: with --http-token-file, requests need
// the file's token, and the start-up line says so without printing it.
func TestHTTPTokenFromAFileIsRequired(t *testing.T) {
	const token = "file-token-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, out := startHTTP(t, app.Flags{HTTP: "127.0.0.1:0", HTTPTokenFile: file, HTTPAllowHosts: []string{"proxy.example"}})
	for _, tc := range []struct {
		host, token string
		want        int
	}{
		{"", "", http.StatusUnauthorized},
		{"", "wrong-token-0123456789abcdef", http.StatusUnauthorized},
		{"", token, http.StatusAccepted},
		{"proxy.example", token, http.StatusAccepted},
		{"evil.example", token, http.StatusMisdirectedRequest},
	} {
		if st := send(t, addr, tc.host, tc.token); st != tc.want {
			t.Errorf("POST with Host %q and token %q: %d, want %d", tc.host, tc.token, st, tc.want)
		}
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz without the token: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	if s := out.String(); strings.Contains(s, token) || !strings.Contains(s, "Authorization: Bearer") {
		t.Errorf("output:\n%s\nwant it to say that requests need the token, without the token", s)
	}
}

// Regression test for issue 10, item 8: --http on an address beyond
// loopback started a listener that anyone on the network could use to
// read state and send messages. Without a token that must fail at
// start-up, with every problem of the HTTP flags listed.
func TestValidateHTTPFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	short := filepath.Join(dir, "short")
	empty := filepath.Join(dir, "empty")
	for name, content := range map[string]string{good: "a-good-token-0123456789\n", short: "secret\n", empty: "\n"} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		flags app.Flags
		want  []string // "" for valid
	}{
		{"loopback", app.Flags{HTTP: "127.0.0.1:8080"}, nil},
		{"localhost", app.Flags{HTTP: "localhost:0"}, nil},
		{"ipv6 loopback", app.Flags{HTTP: "[::1]:8080"}, nil},
		{"all interfaces with a token file", app.Flags{HTTP: "0.0.0.0:8080", HTTPTokenFile: good}, nil},
		{"all interfaces with a token from the environment", app.Flags{HTTP: ":8080", HTTPToken: "env-token-0123456789abcdef"}, nil},
		{"all interfaces", app.Flags{HTTP: "0.0.0.0:8080"}, []string{"--http 0.0.0.0:8080", "beyond this machine", "--http-token-file", app.EnvHTTPToken}},
		{"empty host", app.Flags{HTTP: ":8080"}, []string{`--http :8080`, "beyond this machine"}},
		{"a LAN address", app.Flags{HTTP: "192.168.1.5:80"}, []string{"--http 192.168.1.5:80", "beyond this machine"}},
		{"a host name", app.Flags{HTTP: "example.com:80"}, []string{"--http example.com:80", "beyond this machine"}},
		{"not host:port", app.Flags{HTTP: "8080"}, []string{`--http "8080"`}},
		{"missing token file", app.Flags{HTTP: "127.0.0.1:0", HTTPTokenFile: filepath.Join(dir, "nope")}, []string{"--http-token-file", "nope"}},
		{"empty token file", app.Flags{HTTP: "127.0.0.1:0", HTTPTokenFile: empty}, []string{"--http-token-file", "empty"}},
		{"short token", app.Flags{HTTP: "127.0.0.1:0", HTTPTokenFile: short}, []string{"--http-token-file", "at least 16"}},
		{"token with a space", app.Flags{HTTP: "127.0.0.1:0", HTTPToken: "two words and more than 16"}, []string{app.EnvHTTPToken, "white space"}},
		{"file and environment", app.Flags{HTTP: "127.0.0.1:0", HTTPTokenFile: good, HTTPToken: "env-token-0123456789abcdef"}, []string{"--http-token-file", app.EnvHTTPToken, "both"}},
		{"HTTP flags without --http", app.Flags{HTTPTokenFile: good, HTTPOpenMetrics: true, HTTPMaxConns: 5}, []string{"--http-token-file", "--http-open-metrics", "--http-max-connections", "without --http"}},
		{"negative connections", app.Flags{HTTP: "127.0.0.1:0", HTTPMaxConns: -1}, []string{"--http-max-connections -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.flags.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error saying %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant it to say %q", err, w)
				}
			}
		})
	}
}
