// Package opstest is the application that the tests of the operator
// commands (state edits, timer cancels, dead-letter replays, describe) run
// in the processor, the operator client, the CLI and the HTTP API: a
// counter per address that emits every count it reaches, fails on request
// or while the test says it is broken, and arms delayed messages with
// tokens. It is test support, not part of stateloop's API.
package opstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// The application's function type, message type, state and egress.
var (
	Counter = functions.TypeName("ops/counter")
	Inc     = functions.NewType("ops/inc", codec.JSON[IncMsg]())
	N       = functions.NewState("n", functions.LongType)
	Note    = functions.NewState("note", functions.StringType)
	Out     = functions.TypeName("ops/out")
)

// IncMsg is a message to a counter: it adds one to its count and emits
// the count (Emitted), unless it fails.
type IncMsg struct {
	Seq int `json:"seq"`
	// Fail is "perm" for a permanent failure (the dead-letter topic at
	// once) or "retry" for one that fails every attempt (the dead-letter
	// topic after the retries).
	Fail string `json:"fail,omitempty"`
	// Arm sends, for each token, a delayed IncMsg to the address itself
	// after Delay, with Seq 1000*Seq+i for the i-th token.
	Arm   []string      `json:"arm,omitempty"`
	Delay time.Duration `json:"delay,omitempty"`
}

// Emitted is the value of an egress record: the count an address reached
// with the message Seq.
type Emitted struct {
	ID  string `json:"id"`
	Seq int    `json:"seq"`
	N   int64  `json:"n"`
}

// ErrBroken is the error of every invocation while the application is
// broken.
var ErrBroken = errors.New("opstest: the counter is broken")

// Build returns the topology and registry of application app: the
// counter, ingress <app>-in (keys are ids) and <app>-routed (a router that
// takes the id from the JSON field "id"), egress Out to <app>-out. check,
// if not nil, is called at the start of every invocation; while it
// returns an error, invocations fail permanently with it (ErrBroken, say).
func Build(app string, check func() error) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: Counter, State: []functions.StateSpec{N, Note}, Egresses: []functions.TypeName{Out},
		Function: functions.Router(functions.Handle(Inc, func(ctx functions.Context, m IncMsg) error {
			if check != nil {
				if err := check(); err != nil {
					return functions.Permanent(err)
				}
			}
			switch {
			case m.Fail == "perm":
				return functions.Permanent(fmt.Errorf("opstest: message %d fails for good", m.Seq))
			case m.Fail == "retry":
				return fmt.Errorf("opstest: message %d fails every attempt", m.Seq)
			}
			for i, tok := range m.Arm {
				ctx.SendAfterWithToken(m.Delay, tok, ctx.Self(), Inc.Of(IncMsg{Seq: 1000*m.Seq + i}))
			}
			n, _ := N.Get(ctx)
			N.Set(ctx, n+1)
			b, err := json.Marshal(Emitted{ID: ctx.Self().ID, Seq: m.Seq, N: n + 1})
			if err != nil {
				return err
			}
			ctx.SendEgress(Out, functions.KafkaMessage("", ctx.Self().ID, b))
			return nil
		}))})
	topo := topology.Topology{App: app, Partitions: 4, Functions: []functions.TypeName{Counter},
		Ingresses: []topology.Ingress{
			{Topic: topology.Topic(app + "-in"), ValueType: Inc.Name(), Targets: []functions.TypeName{Counter}},
			{Topic: topology.Topic(app + "-routed"), ValueType: Inc.Name(), Router: route},
		},
		Egresses: []topology.Egress{{ID: Out, Topics: []topology.Topic{topology.Topic(app + "-out")}}},
	}
	return topo, reg
}

// route sends a record of <app>-routed to the counter named by its JSON
// field "id", with the record's value as the IncMsg.
func route(rec topology.Record) ([]functions.OutgoingMessage, error) {
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rec.Value, &v); err != nil || v.ID == "" {
		return nil, fmt.Errorf("opstest: record without a JSON field id: %s", rec.Value)
	}
	return []functions.OutgoingMessage{{To: functions.Address{Type: Counter, ID: v.ID}, Message: functions.NewMessage(Inc.Name(), rec.Value)}}, nil
}

// BrokenWhileFileExists returns a check for Build that returns ErrBroken
// while the file exists: a test breaks and mends an application running
// in another process with it. Each invocation also takes delay.
func BrokenWhileFileExists(path string, delay time.Duration) func() error {
	return func() error {
		time.Sleep(delay)
		if _, err := os.Stat(path); err == nil {
			return ErrBroken
		}
		return nil
	}
}

// Message encodes an IncMsg.
func Message(m IncMsg) functions.Message { return Inc.Of(m) }

// Encode returns the JSON of an IncMsg, as a record value of <app>-in.
func Encode(m IncMsg) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// ReadEmitted returns the counts the counters of application app emitted
// to <app>-out, committed ones only, in order by id.
func ReadEmitted(t testing.TB, client sarama.Client, app string) map[string][]Emitted {
	t.Helper()
	out := map[string][]Emitted{}
	for _, r := range kafkatest.Records(t, client, app+"-out") {
		var e Emitted
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("opstest: egress record %q: %v", r.Value, err)
		}
		out[e.ID] = append(out[e.ID], e)
	}
	return out
}

// WaitEmitted waits until counter id has emitted n counts, and returns
// them.
func WaitEmitted(t testing.TB, client sarama.Client, app, id string, n int) []Emitted {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := ReadEmitted(t, client, app)[id]
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("opstest: %d counts of %s after 60s, want %d", len(got), id, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CheckCountsAroundSet checks the counts a counter emitted for messages
// 1, 2, ... in order with a state set to value after message before: 1 to
// before, then value+1 on.
func CheckCountsAroundSet(t testing.TB, got []Emitted, before int, value int64) {
	t.Helper()
	for i, e := range got {
		want := int64(i + 1)
		if e.Seq > before {
			want = value + int64(e.Seq-before)
		}
		if e.Seq != i+1 || e.N != want {
			t.Fatalf("count %d: message %d counted %d, want message %d counted %d", i, e.Seq, e.N, i+1, want)
		}
	}
}

// Address is the address of counter id.
func Address(id string) functions.Address { return functions.Address{Type: Counter, ID: id} }
