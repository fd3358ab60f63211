package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/stateloop/stateloop/internal/ops"
)

// Bounds of GET /v1/console/dead-letters.
const (
	defaultDeadLetters = 20
	maxDeadLetters     = 200
)

// consoleDeadLettersInfo is the body of GET /v1/console/dead-letters.
type consoleDeadLettersInfo struct {
	Topic   string               `json:"topic"`
	Records []ops.DeadLetterView `json:"records"` // newest first
	Errors  []string             `json:"errors,omitempty"`
}

// consoleDeadLetters answers the last n (?n=, default 20) records of the
// dead-letter topic, newest first, read read_committed from every
// partition, with their replay status (ops.DeadLetterView).
func (s *Server) consoleDeadLetters(w http.ResponseWriter, r *http.Request) {
	n := defaultDeadLetters
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxDeadLetters {
			fail(w, http.StatusBadRequest, fmt.Sprintf("n=%s: want a number from 1 to %d", v, maxDeadLetters))
			return
		}
	}
	c, err := s.opsClient()
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	topic := string(s.cfg.Topology.DLQTopic())
	info := consoleDeadLettersInfo{Topic: topic, Records: []ops.DeadLetterView{}}
	client, err := s.consoleClient()
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	existing, err := partitionCounts(client, []string{topic})
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if _, ok := existing[topic]; !ok {
		// the processor creates it at start-up
		info.Errors = append(info.Errors, "topic "+topic+" does not exist yet")
		writeJSON(w, http.StatusOK, info)
		return
	}
	dls, errs := c.DeadLetters(ctx, ops.Filter{Partition: ops.AnyPartition, To: -1}, n)
	for i := range dls {
		info.Records = append(info.Records, dls[i].View(s.cfg.Topology))
	}
	for _, e := range errs {
		info.Errors = append(info.Errors, e.Error())
	}
	writeJSON(w, http.StatusOK, info)
}
