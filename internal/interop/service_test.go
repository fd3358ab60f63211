package interop_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stateloop/stateloop/internal/sdkcache"
)

// service is a function service (python/server.py, js/server.js)
// running as a child process on a port of 127.0.0.1.
type service struct {
	*sdkcache.Service
}

// serviceStats is what a service answers on GET /_stats: requests and
// injected failures per function name.
type serviceStats struct {
	Requests map[string]int `json:"requests"`
	Failures map[string]int `json:"failures"`
}

// startService starts argv plus --port PORT and args on a free port and
// waits until it answers GET /_stats (sdkcache.Serve).
func startService(t *testing.T, name string, env []string, argv []string, args ...string) *service {
	t.Helper()
	return &service{sdkcache.Serve(t, name, env, argv, "/_stats", args...)}
}

// stop stops the service.
func (s *service) stop() { s.Stop() }

// stats asks the service for its request and failure counts.
func (s *service) stats() (serviceStats, error) {
	var st serviceStats
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(s.URL + "/_stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /_stats: %s: %s", resp.Status, b)
	}
	return st, json.Unmarshal(b, &st)
}
