package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestGeneratorIsDeterministic checks that a seed makes the same stream
// and another seed another one.
func TestGeneratorIsDeterministic(t *testing.T) {
	t.Parallel()
	cfg := generatorConfig{Seed: 7, Accounts: 100, Merchants: 20, FraudRate: 0.1}
	stream := func(cfg generatorConfig) []event {
		g := newGenerator(cfg)
		out := make([]event, 500)
		for i := range out {
			out[i] = g.next(t0)
		}
		return out
	}
	a, b := stream(cfg), stream(cfg)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two runs with seed 7 differ (-first +second):\n%s", diff)
	}
	cfg.Seed = 8
	if c := stream(cfg); cmp.Equal(a[1:], c[1:], cmp.Comparer(func(x, y fraud.Transaction) bool {
		return x.Account == y.Account && x.Merchant == y.Merchant && x.Amount == y.Amount
	})) {
		t.Error("seeds 7 and 8 make the same stream")
	}
	if a[0].Transaction.ID != "t7-1" || a[499].Transaction.ID != "t7-500" {
		t.Errorf("ids %s ... %s, want t7-1 ... t7-500", a[0].Transaction.ID, a[499].Transaction.ID)
	}
}

// TestGeneratorConcentratesFraud checks the shape of the stream: the fraud
// rate, fraud on few accounts at risky merchants with large amounts, and
// valid transactions throughout.
func TestGeneratorConcentratesFraud(t *testing.T) {
	t.Parallel()
	g := newGenerator(generatorConfig{Seed: 1, Accounts: 1000, Merchants: 200, FraudRate: 0.01})
	const n = 100000
	frauds := 0
	fraudAccounts := make(map[string]int)
	var fraudAmount, honestAmount float64
	for i := range n {
		e := g.next(t0)
		if i%100 == 0 || e.Fraud {
			b, _ := json.Marshal(e.Transaction)
			if _, err := fraud.ParseTransaction(nil, b); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		if e.Fraud {
			frauds++
			fraudAccounts[e.Transaction.Account]++
			fraudAmount += e.Transaction.Amount
			if fraud.MerchantRisk(e.Transaction.Merchant) < 0.5 {
				t.Errorf("fraud at a safe merchant: %+v", e.Transaction)
			}
		} else {
			honestAmount += e.Transaction.Amount
		}
	}
	if frauds < n/100*9/10 || frauds > n/100*11/10 {
		t.Errorf("%d frauds in %d transactions, want about 1%%", frauds, n)
	}
	if per := float64(frauds) / float64(len(fraudAccounts)); per < fraudsPerCard-1 {
		t.Errorf("%.1f frauds per compromised account, want about %d", per, fraudsPerCard)
	}
	if avgF, avgH := fraudAmount/float64(frauds), honestAmount/float64(n-frauds); avgF < 5*avgH {
		t.Errorf("average fraud %.2f, honest %.2f: want fraud much larger", avgF, avgH)
	}
}

// TestRunWritesTransactionsAndReports runs the command's loop against an
// in-process broker and counts what it wrote.
// createTopics creates the topics of the load as the fraud application
// does, with 8 partitions (kafkatest's broker would make 4).
func createTopics(t *testing.T, client sarama.Client) {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []topology.Topic{fraud.TransactionsTopic, fraud.ConfirmedFraudTopic} {
		if err := admin.CreateTopic(string(topic), &sarama.TopicDetail{NumPartitions: 8, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunWritesTransactionsAndReports(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	createTopics(t, kafkatest.Client(t, brokers))
	o := options{brokers: brokers, rate: 5000, count: 300, reportDelay: 50 * time.Millisecond,
		gen: generatorConfig{Seed: 3, Accounts: 50, Merchants: 20, FraudRate: 0.05}}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, o, &out); err != nil {
		t.Fatal(err)
	}
	wantFrauds := 0
	g := newGenerator(o.gen)
	wantIDs := make(map[string]bool)
	for range o.count {
		e := g.next(t0)
		wantIDs[e.Transaction.ID] = true
		if e.Fraud {
			wantFrauds++
		}
	}
	client := kafkatest.Client(t, brokers)
	txs := kafkatest.ReadCommitted(t, client, string(fraud.TransactionsTopic))
	for _, v := range txs {
		tx, err := fraud.ParseTransaction(nil, []byte(v))
		if err != nil || !wantIDs[tx.ID] {
			t.Errorf("unexpected transaction %s (%v)", v, err)
		}
		delete(wantIDs, tx.ID)
	}
	if len(txs) != o.count || len(wantIDs) != 0 {
		t.Errorf("got %d transactions, want %d; missing %v", len(txs), o.count, wantIDs)
	}
	if reports := kafkatest.ReadCommitted(t, client, string(fraud.ConfirmedFraudTopic)); len(reports) != wantFrauds || wantFrauds == 0 {
		t.Errorf("got %d reports, want %d (and some)", len(reports), wantFrauds)
	}
	if !strings.Contains(out.String(), "300 transactions") {
		t.Errorf("output lacks the final count:\n%s", out.String())
	}
}

// TestRunWaitsForTheTopicsOfTheApplication is a regression test of issue
// 10 (5): started before the fraud application had created its topics, the
// load generator's first write made the broker create them, with its
// default partition count (or failed, with auto-creation off). It waits for
// them instead, and says so.
func TestRunWaitsForTheTopicsOfTheApplication(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	o := options{brokers: brokers, rate: 5000, count: 50, reportDelay: time.Millisecond,
		gen: generatorConfig{Seed: 3, Accounts: 50, Merchants: 20, FraudRate: 0.05}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &kafkatest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, out) }()
	for !strings.Contains(out.String(), "waiting for the topics transactions, confirmed-fraud") {
		select {
		case err := <-done:
			t.Fatalf("run returned %v without waiting for the topics; output:\n%s", err, out)
		case <-ctx.Done():
			t.Fatalf("no note that it waits for the topics; output:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	createTopics(t, client)
	if err := <-done; err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out)
	}
	if got := kafkatest.ReadCommitted(t, client, string(fraud.TransactionsTopic)); len(got) != o.count {
		t.Errorf("got %d transactions, want %d", len(got), o.count)
	}
	for _, topic := range []topology.Topic{fraud.TransactionsTopic, fraud.ConfirmedFraudTopic} {
		if parts, err := client.Partitions(string(topic)); err != nil || len(parts) != 8 {
			t.Errorf("topic %s: %d partitions (%v), want the application's 8", topic, len(parts), err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	o := options{rate: 0, count: -1, reportDelay: -1, gen: generatorConfig{FraudRate: 2}}
	err := o.validate()
	for _, w := range []string{"--brokers", "--rate", "--count", "--report-delay", "--accounts", "--merchants", "--fraud-rate"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("validate: %v does not mention %s", err, w)
		}
	}
}
