package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// fakeClock is the processor's clock in TestFraudDetectionEndToEnd: it
// stands still until the test moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const day = 24 * time.Hour

// TestFraudDetectionEndToEnd runs the application, with its default
// 30-day window, on an in-process broker and a fake clock. It writes fraud
// reports and transactions to the ingress topics, moves the clock through
// the window, and checks every decision read_committed: each transaction
// scored once, with the fraud count of its account at that time, the risky
// ones alerted, and the counts back to zero once the window has passed.
func TestFraudDetectionEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	brokers := kafkatest.StartKfake(t)
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	topo, reg := fraud.Config{}.Build()
	topo.Partitions = 4
	p, err := processor.New(brokers, topo, reg,
		processor.WithClock(clock.Now),
		processor.WithCommitInterval(20*time.Millisecond),
		processor.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	run := &running{done: make(chan struct{})}
	go func() { run.err = p.Run(runCtx); close(run.done) }()
	defer func() {
		stop()
		select {
		case <-run.done:
			if run.err != nil {
				t.Errorf("Run: %v", run.err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	}()
	waitStats(t, p, run, "the processor to be ready", func(s processor.Stats) bool { return s.Ready })

	client := kafkatest.Client(t, brokers)
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	report := func(accounts ...string) {
		t.Helper()
		before := p.Stats().Invocations
		for _, a := range accounts {
			produce(t, producer, fraud.ConfirmedFraudTopic, a, `{"transaction":"earlier"}`)
		}
		waitStats(t, p, run, "the counters to count the reports", func(s processor.Stats) bool {
			return s.Invocations >= before+int64(len(accounts))
		})
	}
	start := clock.Now()
	// advance moves the clock to day d and waits for the counters to take
	// back the reports whose window has passed.
	advance := func(d int, expiring int64) {
		t.Helper()
		before := p.Stats()
		clock.Advance(start.Add(time.Duration(d) * day).Sub(clock.Now()))
		waitStats(t, p, run, fmt.Sprintf("%d reports to expire on day %d", expiring, d), func(s processor.Stats) bool {
			return s.TimersFired >= before.TimersFired+expiring && s.Invocations >= before.Invocations+expiring
		})
	}

	const (
		fraudster = "acct-fraudster"    // three reports on day 0
		unlucky   = "acct-unlucky"      // one report on day 0, one on day 10
		clean     = "acct-clean"        // none
		safe      = "coffee-bar"        // a merchant with a low risk score
		risky     = "late-night-casino" // a merchant with a high one
	)
	if fraud.MerchantRisk(safe) > 0.1 || fraud.MerchantRisk(risky) < 0.9 {
		t.Fatalf("merchant risks changed: %s %v, %s %v; pick other merchants", safe, fraud.MerchantRisk(safe), risky, fraud.MerchantRisk(risky))
	}
	report(fraudster, fraudster, fraudster, unlucky)
	advance(10, 0)
	report(unlucky)

	type step struct {
		tx    fraud.Transaction
		count int64 // the fraud count of the account at that time
		alert bool
	}
	tx := func(id, account, merchant string, amount float64) fraud.Transaction {
		return fraud.Transaction{ID: id, Account: account, Merchant: merchant, Amount: amount, Time: clock.Now()}
	}
	var want []step
	var sent []fraud.Transaction
	phase := func(steps ...step) {
		t.Helper()
		for _, s := range steps {
			b, err := json.Marshal(s.tx)
			if err != nil {
				t.Fatal(err)
			}
			produce(t, producer, fraud.TransactionsTopic, s.tx.ID, string(b))
			sent = append(sent, s.tx)
		}
		want = append(want, steps...)
		readDecisions(t, client, fraud.ScoresTopic, len(want))
	}

	// day 10: the fraudster has 3 reports, the unlucky account 2
	phase(
		step{tx("d10-1", fraudster, safe, 100), 3, true},
		step{tx("d10-2", fraudster, risky, 100), 3, true},
		step{tx("d10-3", unlucky, safe, 100), 2, false},
		step{tx("d10-4", unlucky, risky, 100), 2, true},
		step{tx("d10-5", clean, safe, 100), 0, false},
		step{tx("d10-6", clean, risky, 100), 0, false},
	)
	// the same transaction again, as a producer that retries writes it:
	// it is not scored a second time (wait for it before the clock moves
	// on: after DuplicateWindow it would be a new transaction)
	before := p.Stats().Invocations
	b, _ := json.Marshal(sent[0])
	produce(t, producer, fraud.TransactionsTopic, sent[0].ID, string(b))
	sent = append(sent, sent[0])
	waitStats(t, p, run, "the duplicate", func(s processor.Stats) bool { return s.Invocations > before })

	// day 30: the day-0 reports are forgotten, the unlucky account's
	// day-10 report is not
	advance(30, 4)
	phase(
		step{tx("d30-1", fraudster, safe, 100), 0, false},
		step{tx("d30-2", fraudster, risky, 100), 0, false},
		step{tx("d30-3", unlucky, risky, 100), 1, false},
		step{tx("d30-4", clean, risky, 10000), 0, true}, // a large amount at a risky merchant
	)
	// day 40: nothing is left
	advance(40, 1)
	phase(
		step{tx("d40-1", unlucky, risky, 100), 0, false},
		step{tx("d40-2", fraudster, risky, 100), 0, false},
	)
	waitStats(t, p, run, "every record to be routed", func(s processor.Stats) bool { return s.Ingress >= int64(5+len(sent)) })

	// every transaction scored exactly once, with the features it had
	scores := readDecisions(t, client, fraud.ScoresTopic, len(want))
	byID := make(map[string]fraud.Decision)
	for _, d := range scores {
		if _, dup := byID[d.Transaction.ID]; dup {
			t.Errorf("transaction %s scored twice", d.Transaction.ID)
		}
		byID[d.Transaction.ID] = d
	}
	var wantAlerts []string
	for _, s := range want {
		f := fraud.Features{FraudCount: s.count, MerchantScore: fraud.MerchantRisk(s.tx.Merchant), Amount: s.tx.Amount}
		score := fraud.Score(f)
		if (score > fraud.DefaultThreshold) != s.alert {
			t.Fatalf("%s: the model scores %+v %.3f; the test expects alert %v", s.tx.ID, f, score, s.alert)
		}
		got, ok := byID[s.tx.ID]
		if !ok {
			t.Errorf("%s: not scored", s.tx.ID)
			continue
		}
		wantD := fraud.Decision{Transaction: s.tx, Features: f, Score: score, Alert: s.alert, MerchantSource: got.MerchantSource}
		if diff := cmp.Diff(wantD, got); diff != "" {
			t.Errorf("%s: decision (-want +got):\n%s", s.tx.ID, diff)
		}
		if s.alert {
			wantAlerts = append(wantAlerts, s.tx.ID)
		}
	}
	if len(scores) != len(want) {
		t.Errorf("got %d decisions, want %d", len(scores), len(want))
	}

	// the alerts are exactly the risky ones
	var alerts []string
	for _, d := range readDecisions(t, client, fraud.AlertsTopic, len(wantAlerts)) {
		alerts = append(alerts, d.Transaction.ID)
	}
	slices.Sort(alerts)
	slices.Sort(wantAlerts)
	if !slices.Equal(alerts, wantAlerts) {
		t.Errorf("alerts: got %v, want %v", alerts, wantAlerts)
	}

	// each merchant asked the service once per day it was asked on (its
	// score is kept an hour), and answered from its state otherwise
	lookups := make(map[string]int)
	for _, d := range scores {
		if d.MerchantSource == fraud.SourceService {
			lookups[strings.SplitN(d.Transaction.ID, "-", 2)[0]+" "+d.Transaction.Merchant]++
		} else if d.MerchantSource != fraud.SourceCache {
			t.Errorf("%s: merchant score from %q", d.Transaction.ID, d.MerchantSource)
		}
	}
	wantLookups := map[string]int{"d10 " + safe: 1, "d10 " + risky: 1, "d30 " + safe: 1, "d30 " + risky: 1, "d40 " + risky: 1}
	if diff := cmp.Diff(wantLookups, lookups); diff != "" {
		t.Errorf("merchant service lookups by day (-want +got):\n%s", diff)
	}

	// nothing failed and, unless a transaction was retried, every
	// invocation happened once: 5 reports, their 5 expiries, 7 per
	// transaction (transaction, counter, merchant, both answers, model,
	// decision) and 1 for the duplicate
	s := p.Stats()
	if s.DeadLetters != 0 || s.Failures != 0 {
		t.Errorf("stats: %d dead letters, %d failures, want none", s.DeadLetters, s.Failures)
	}
	if wantInv := int64(5 + 5 + 7*len(want) + 1); s.Aborts == 0 && s.Invocations != wantInv {
		t.Errorf("stats: %d invocations, want %d", s.Invocations, wantInv)
	}
}

// produce writes one plain record.
func produce(t *testing.T, producer sarama.SyncProducer, topic topology.Topic, key, value string) {
	t.Helper()
	if _, _, err := producer.SendMessage(&sarama.ProducerMessage{
		Topic: string(topic), Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value),
	}); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// readDecisions waits until topic holds at least n committed decisions and
// returns them all.
func readDecisions(t *testing.T, client sarama.Client, topic topology.Topic, n int) []fraud.Decision {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		values := kafkatest.ReadCommitted(t, client, string(topic))
		if len(values) >= n {
			out := make([]fraud.Decision, len(values))
			for i, v := range values {
				if err := json.Unmarshal([]byte(v), &out[i]); err != nil {
					t.Fatalf("%s: %v: %s", topic, err, v)
				}
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d committed records after 20s, want %d:\n%s", topic, len(values), n, strings.Join(values, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is a processor's Run in a goroutine: err is set when done is
// closed.
type running struct {
	done chan struct{}
	err  error
}

// waitStats waits until the processor's stats satisfy ok.
func waitStats(t *testing.T, p *processor.Processor, run *running, what string, ok func(processor.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(p.Stats()) {
		select {
		case <-run.done:
			t.Fatalf("Run returned while waiting for %s: %v", what, run.err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s; stats %+v", what, p.Stats())
		}
	}
}
