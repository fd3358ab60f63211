package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
)

// Bounds of GET /v1/console/dead-letters.
const (
	defaultDeadLetters = 20
	maxDeadLetters     = 200
	// maxShownValue bounds the bytes of a record value shown
	maxShownValue = 4 << 10
)

// consoleDeadLettersInfo is the body of GET /v1/console/dead-letters.
type consoleDeadLettersInfo struct {
	Topic   string              `json:"topic"`
	Records []consoleDeadLetter `json:"records"` // newest first
	Errors  []string            `json:"errors,omitempty"`
}

// consoleDeadLetter is one record of the dead-letter topic, with what its
// stateloop.* headers say.
type consoleDeadLetter struct {
	Partition    int32          `json:"partition"`
	Offset       int64          `json:"offset"`
	Time         time.Time      `json:"time"`
	Key          string         `json:"key,omitempty"`
	Reason       string         `json:"reason"`                  // stateloop.error
	FunctionType string         `json:"function_type,omitempty"` // stateloop.function.type
	FunctionID   string         `json:"function_id,omitempty"`   // stateloop.function.id
	Source       *consoleSource `json:"source,omitempty"`        // stateloop.source.*
	// Message is the message the record carried, when it came from the
	// loop topic and its envelope decodes.
	Message *consoleMessage `json:"message,omitempty"`
	// Value is the record's value otherwise, as codec.Display shows it.
	Value any `json:"value,omitempty"`
	// ValueDropped: the value could not be written to the dead-letter
	// topic (stateloop.value.dropped).
	ValueDropped bool `json:"value_dropped,omitempty"`
	// Truncated: only the first maxShownValue bytes of the value are shown.
	Truncated bool              `json:"truncated,omitempty"`
	Headers   map[string]string `json:"headers"`
}

// consoleSource is the consumed record that failed.
type consoleSource struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// consoleMessage is a message in a loop topic envelope.
type consoleMessage struct {
	Target string `json:"target"`
	Caller string `json:"caller,omitempty"`
	Type   string `json:"type"`
	Value  any    `json:"value"`
}

// consoleDeadLetters answers the last n (?n=, default 20) records of the
// dead-letter topic, newest first, read read_committed from every
// partition.
func (s *Server) consoleDeadLetters(w http.ResponseWriter, r *http.Request) {
	n := defaultDeadLetters
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxDeadLetters {
			fail(w, http.StatusBadRequest, fmt.Sprintf("n=%s: want a number from 1 to %d", v, maxDeadLetters))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	topic := string(s.cfg.Topology.DLQTopic())
	info := consoleDeadLettersInfo{Topic: topic, Records: []consoleDeadLetter{}}
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
	count, ok := existing[topic]
	if !ok {
		// the processor creates it at start-up
		info.Errors = append(info.Errors, "topic "+topic+" does not exist yet")
		writeJSON(w, http.StatusOK, info)
		return
	}
	var parts []topicPartition
	for p := range count {
		parts = append(parts, topicPartition{topic, p})
	}
	ends := listEnds(client, parts)
	for _, tp := range parts {
		e := ends[tp]
		if e.err != nil {
			info.Errors = append(info.Errors, e.err.Error())
			continue
		}
		recs, err := s.lastRecords(ctx, client, tp, e, n)
		if err != nil {
			info.Errors = append(info.Errors, err.Error())
		}
		info.Records = append(info.Records, recs...)
	}
	slices.SortFunc(info.Records, func(a, b consoleDeadLetter) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Partition, b.Partition), cmp.Compare(b.Offset, a.Offset))
	})
	if len(info.Records) > n {
		info.Records = info.Records[:n]
	}
	writeJSON(w, http.StatusOK, info)
}

// lastRecords reads the last n committed records of a partition below its
// LSO. Offsets also hold commit markers and aborted records, so it reads
// back from the end in growing windows until it has n records, reaches
// the log start, or has looked at 64·n offsets.
func (s *Server) lastRecords(ctx context.Context, client sarama.Client, tp topicPartition, e partitionEnds, n int) ([]consoleDeadLetter, error) {
	var out []consoleDeadLetter
	limit := int64(64 * n)
	end, window, scanned := e.lso, int64(2*n), int64(0)
	for end > e.start && len(out) < n && scanned < limit {
		from := max(e.start, end-min(window, limit-scanned))
		var got []consoleDeadLetter
		err := readTimed(ctx, client, tp.topic, tp.partition, from, end, func(r kafkaread.Record, ts time.Time) {
			got = append(got, s.deadLetter(tp.partition, r, ts))
		})
		out = append(got, out...)
		if err != nil {
			return out, err
		}
		scanned += end - from
		end, window = from, window*4
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// deadLetter describes a record of the dead-letter topic.
func (s *Server) deadLetter(partition int32, r kafkaread.Record, ts time.Time) consoleDeadLetter {
	dl := consoleDeadLetter{Partition: partition, Offset: r.Offset, Time: ts.UTC(), Headers: map[string]string{}}
	if r.Key != nil {
		dl.Key = strings.ToValidUTF8(string(r.Key), "\uFFFD")
	}
	src := consoleSource{Partition: -1, Offset: -1}
	for _, h := range r.Headers {
		k, v := string(h.Key), strings.ToValidUTF8(string(h.Value), "\uFFFD")
		dl.Headers[k] = v
		switch k {
		case "stateloop.error":
			dl.Reason = v
		case "stateloop.function.type":
			dl.FunctionType = v
		case "stateloop.function.id":
			dl.FunctionID = v
		case "stateloop.source.topic":
			src.Topic = v
		case "stateloop.source.partition":
			if p, err := strconv.ParseInt(v, 10, 32); err == nil {
				src.Partition = int32(p)
			}
		case "stateloop.source.offset":
			if o, err := strconv.ParseInt(v, 10, 64); err == nil {
				src.Offset = o
			}
		case "stateloop.value.dropped":
			dl.ValueDropped = true
		}
	}
	if src.Topic != "" {
		dl.Source = &src
	}
	if dl.ValueDropped || r.Value == nil {
		return dl
	}
	if src.Topic == string(s.cfg.Topology.LoopTopic()) {
		if env, err := wire.DecodeEnvelope(r.Value); err == nil {
			msg := &consoleMessage{Target: env.Target.String(), Type: string(env.Argument.TypeName())}
			if env.Caller != nil {
				msg.Caller = env.Caller.String()
			}
			msg.Value, dl.Truncated = display(string(env.Argument.TypeName()), env.Argument.Bytes())
			dl.Message = msg
			return dl
		}
	}
	dl.Value, dl.Truncated = display("", r.Value)
	return dl
}

// display shows a value as codec.Display does, cut to maxShownValue bytes
// (at a rune boundary).
func display(typeName string, b []byte) (v any, truncated bool) {
	if len(b) > maxShownValue {
		b, truncated = b[:maxShownValue], true
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
		return codec.Display("", b), true
	}
	return codec.Display(typeName, b), false
}
