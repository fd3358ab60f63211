// Package opsapp runs the opstest application (or another) on a
// processor in the test's process, for the tests of the operator client,
// the CLI and the HTTP API. It is test support, not part of stateloop's
// API.
package opsapp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/opstest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// App is a running opstest application.
type App struct {
	Brokers   []string
	Topo      topology.Topology
	Client    sarama.Client
	Processor *processor.Processor
	// Broken makes every invocation fail permanently while true.
	Broken atomic.Bool
	// Delay is how long each invocation takes, in nanoseconds.
	Delay atomic.Int64
}

// Start runs the opstest application app on brokers until the test ends,
// and waits until it is ready.
func Start(t testing.TB, brokers []string, app string, opts ...processor.Option) *App {
	t.Helper()
	a := &App{Brokers: brokers}
	topo, reg := opstest.Build(app, func() error {
		time.Sleep(time.Duration(a.Delay.Load()))
		if a.Broken.Load() {
			return opstest.ErrBroken
		}
		return nil
	})
	a.Topo = topo
	p, err := processor.New(brokers, topo, reg, append([]processor.Option{processor.WithCommitInterval(20 * time.Millisecond),
		processor.WithRetries(2, 20*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	a.Processor = p
	Run(t, p)
	a.Client = kafkatest.Client(t, brokers)
	return a
}

// Run runs p until the test ends, and waits until it is ready.
func Run(t testing.TB, p *processor.Processor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("opsapp: processor: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !p.Stats().Ready {
		if time.Now().After(deadline) {
			t.Fatal("opsapp: the processor is not ready after 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Emitted returns the counts emitted so far, by counter id.
func (a *App) Emitted(t testing.TB) map[string][]opstest.Emitted {
	t.Helper()
	return opstest.ReadEmitted(t, a.Client, a.Topo.App)
}

// WaitEmitted waits for n counts of counter id.
func (a *App) WaitEmitted(t testing.TB, id string, n int) []opstest.Emitted {
	t.Helper()
	return opstest.WaitEmitted(t, a.Client, a.Topo.App, id, n)
}

// Send writes messages to counter id through the loop topic, in order.
func (a *App) Send(t testing.TB, id string, msgs ...opstest.IncMsg) {
	t.Helper()
	s, err := processor.NewSender(a.Brokers, a.Topo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, m := range msgs {
		if err := s.Send(context.Background(), opstest.Address(id), opstest.Message(m)); err != nil {
			t.Fatal(err)
		}
	}
}

// WaitDeadLetters waits until the dead-letter topic holds n records (replay
// markers not counted).
func (a *App) WaitDeadLetters(t testing.TB, n int) []kafkatest.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var dls []kafkatest.Record
		for _, r := range kafkatest.Records(t, a.Client, a.Topo.App+"-dlq") {
			if _, marker := r.Headers["stateloop.replay.of"]; !marker {
				dls = append(dls, r)
			}
		}
		if len(dls) >= n {
			return dls
		}
		if time.Now().After(deadline) {
			t.Fatalf("opsapp: %d dead letters after 60s, want %d", len(dls), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
