package fraud_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
	"github.com/stateloop/stateloop/topology"
)

const day = 24 * time.Hour

func counterOf(account string) functions.Address {
	return functions.Address{Type: fraud.CounterFunction, ID: account}
}

func merchantOf(name string) functions.Address {
	return functions.Address{Type: fraud.MerchantFunction, ID: name}
}

func txAddr(id string) functions.Address {
	return functions.Address{Type: fraud.TransactionFunction, ID: id}
}

// report delivers a confirmed fraud to the counter of account, as the
// ingress does.
func report(t *testing.T, h *functionstest.Harness, account string) {
	t.Helper()
	if _, err := h.Invoke(counterOf(account), fraud.ReportType.Of(fraud.Report{Account: account})); err != nil {
		t.Fatalf("report %s: %v", account, err)
	}
}

// countOf asks the counter of account, as a transaction does, and returns
// its answer.
func countOf(t *testing.T, h *functionstest.Harness, account string) int64 {
	t.Helper()
	res, err := h.InvokeFrom(txAddr("probe"), counterOf(account), fraud.CountQueryType.Of(fraud.CountQuery{}))
	if err != nil {
		t.Fatalf("count query to %s: %v", account, err)
	}
	if len(res.Messages) != 1 || res.Messages[0].To != txAddr("probe") {
		t.Fatalf("count query to %s: got %+v, want one answer to the caller", account, res.Messages)
	}
	c, err := fraud.FraudCountType.As(res.Messages[0].Message)
	if err != nil {
		t.Fatal(err)
	}
	if c.Account != account {
		t.Errorf("answer of the counter of %s names account %s", account, c.Account)
	}
	return c.Count
}

// TestCounterForgetsReportsAfterTheWindow is StateFun's rolling 30-day
// count on the harness's fake clock: each report counts until its delayed
// message to the counter itself arrives 30 days later.
func TestCounterForgetsReportsAfterTheWindow(t *testing.T) {
	t.Parallel()
	h := functionstest.New(fraud.Config{}.Registry(), functionstest.WithTopology(fraud.Topology()))
	step := func(advance time.Duration, want int64) {
		t.Helper()
		if err := h.Advance(advance); err != nil {
			t.Fatal(err)
		}
		at := h.Now().Sub(functionstest.Epoch)
		if got := countOf(t, h, "acct-1"); got != want {
			t.Errorf("at %v: count %d, want %d", at, got, want)
		}
		n, set := functionstest.StateOf(h, counterOf("acct-1"), fraud.FraudCountState)
		if n != want || set != (want > 0) {
			t.Errorf("at %v: state %d (set %v), want %d", at, n, set, want)
		}
	}
	step(0, 0)
	report(t, h, "acct-1")
	report(t, h, "acct-1")
	step(0, 2)
	step(10*day, 2)
	report(t, h, "acct-1")
	step(0, 3)
	if p := h.Pending(); len(p) != 3 || !p[2].Due.Equal(functionstest.Epoch.Add(40*day)) || p[2].From != counterOf("acct-1") {
		t.Errorf("pending: got %+v, want 3 delayed messages, the last due at day 40 from the counter", p)
	}
	step(20*day-time.Millisecond, 3) // just before day 30
	step(time.Millisecond, 1)        // day 30: the first two are gone
	step(10*day, 0)                  // day 40: the state is cleared
	if p := h.Pending(); len(p) != 0 {
		t.Errorf("pending after day 40: %+v, want none", p)
	}
	if got := countOf(t, h, "acct-2"); got != 0 {
		t.Errorf("another account: count %d, want 0", got)
	}
}

func TestCounterWindowIsConfigurable(t *testing.T) {
	t.Parallel()
	h := functionstest.New(fraud.Config{Window: 30 * time.Second}.Registry(), functionstest.WithTopology(fraud.Topology()))
	report(t, h, "acct-1")
	if err := h.Advance(29 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := countOf(t, h, "acct-1"); got != 1 {
		t.Errorf("after 29s: count %d, want 1", got)
	}
	if err := h.Advance(time.Second); err != nil {
		t.Fatal(err)
	}
	if got := countOf(t, h, "acct-1"); got != 0 {
		t.Errorf("after 30s: count %d, want 0", got)
	}
}

// TestCounterRefusesForeignExpiry checks that only the counter itself can
// take a report back: anyone else would make the count wrong.
func TestCounterRefusesForeignExpiry(t *testing.T) {
	t.Parallel()
	h := functionstest.New(fraud.Config{}.Registry(), functionstest.WithTopology(fraud.Topology()))
	report(t, h, "acct-1")
	expiry := h.Pending()[0].Message // the counter's own delayed message
	for _, from := range []*functions.Address{nil, {Type: fraud.CounterFunction, ID: "acct-2"}} {
		var err error
		if from == nil {
			_, err = h.Invoke(counterOf("acct-1"), expiry)
		} else {
			_, err = h.InvokeFrom(*from, counterOf("acct-1"), expiry)
		}
		if err == nil || !functions.IsPermanent(err) {
			t.Errorf("expiry from %v: got %v, want a permanent error", from, err)
		}
	}
	if got := countOf(t, h, "acct-1"); got != 1 {
		t.Errorf("count %d, want 1", got)
	}
}

func TestQueriesWithoutCallerFailPermanently(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		to   functions.Address
		msg  functions.Message
	}{
		{"counter", counterOf("acct-1"), fraud.CountQueryType.Of(fraud.CountQuery{})},
		{"merchant", merchantOf("shop"), fraud.MerchantQueryType.Of(fraud.MerchantQuery{})},
		{"model", functions.Address{Type: fraud.ModelFunction, ID: "t1"}, fraud.FeaturesType.Of(fraud.Features{})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := functionstest.New(fraud.Config{}.Registry(), functionstest.WithTopology(fraud.Topology()))
			_, err := h.Invoke(tc.to, tc.msg)
			if err == nil || !functions.IsPermanent(err) || !strings.Contains(err.Error(), "caller") {
				t.Errorf("got %v, want a permanent error about the missing caller", err)
			}
		})
	}
}

// countingService is a merchant service that counts its calls.
func countingService(calls *atomic.Int64, latency time.Duration, err error) fraud.MerchantService {
	return func(ctx context.Context, merchant string) (float64, error) {
		calls.Add(1)
		if err != nil {
			return 0, err
		}
		return fraud.DemoMerchantService(latency)(ctx, merchant)
	}
}

// askMerchant asks a merchant for its score as a transaction does.
func askMerchant(t *testing.T, h *functionstest.Harness, name string) fraud.MerchantScore {
	t.Helper()
	res, err := h.InvokeFrom(txAddr("probe"), merchantOf(name), fraud.MerchantQueryType.Of(fraud.MerchantQuery{}))
	if err != nil {
		t.Fatalf("ask %s: %v", name, err)
	}
	if len(res.Messages) != 1 || res.Messages[0].To != txAddr("probe") {
		t.Fatalf("ask %s: got %+v, want one answer to the caller", name, res.Messages)
	}
	s, err := fraud.MerchantScoreType.As(res.Messages[0].Message)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMerchantKeepsTheScoreUntilItExpires checks that the score is looked
// up once per MerchantTTL: state with ExpireAfterWrite, on the fake clock.
func TestMerchantKeepsTheScoreUntilItExpires(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	h := functionstest.New(fraud.Config{MerchantTTL: time.Hour, Service: countingService(&calls, 0, nil)}.Registry(), functionstest.WithTopology(fraud.Topology()))
	risk := fraud.MerchantRisk("late-night-casino")
	steps := []struct {
		advance time.Duration
		source  string
		calls   int64
	}{
		{0, fraud.SourceService, 1},
		{0, fraud.SourceCache, 1},
		{59 * time.Minute, fraud.SourceCache, 1},
		{time.Minute, fraud.SourceService, 2}, // an hour after the write
		{30 * time.Minute, fraud.SourceCache, 2},
	}
	for i, s := range steps {
		if err := h.Advance(s.advance); err != nil {
			t.Fatal(err)
		}
		got := askMerchant(t, h, "late-night-casino")
		want := fraud.MerchantScore{Merchant: "late-night-casino", Score: risk, Source: s.source}
		if got != want || calls.Load() != s.calls {
			t.Errorf("step %d: got %+v after %d calls, want %+v after %d", i, got, calls.Load(), want, s.calls)
		}
	}
	if v, ok := functionstest.StateOf(h, merchantOf("late-night-casino"), fraud.MerchantScoreState); !ok || v != risk {
		t.Errorf("state: got %v (set %v), want %v", v, ok, risk)
	}
}

// TestMerchantFallsBackWhenTheServiceFails checks that a failed or slow
// lookup answers FallbackScore and keeps nothing, so the next query asks
// again.
func TestMerchantFallsBackWhenTheServiceFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		latency time.Duration
		err     error
	}{
		{"error", 0, errors.New("service unavailable")},
		{"over the budget", time.Second, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			h := functionstest.New(fraud.Config{Service: countingService(&calls, tc.latency, tc.err), ServiceBudget: 10 * time.Millisecond}.Registry(), functionstest.WithTopology(fraud.Topology()))
			for i := range 2 {
				got := askMerchant(t, h, "shop")
				if want := (fraud.MerchantScore{Merchant: "shop", Score: fraud.FallbackScore, Source: fraud.SourceFallback}); got != want {
					t.Errorf("query %d: got %+v, want %+v", i, got, want)
				}
			}
			if calls.Load() != 2 {
				t.Errorf("service calls: %d, want 2 (nothing kept)", calls.Load())
			}
			if _, ok := functionstest.StateOf(h, merchantOf("shop"), fraud.MerchantScoreState); ok {
				t.Error("the fallback score was kept")
			}
		})
	}
}

func TestMerchantRisk(t *testing.T) {
	t.Parallel()
	high := 0
	const n = 10000
	for i := range n {
		name := fmt.Sprintf("merchant-%d", i)
		r := fraud.MerchantRisk(name)
		if r < 0 || r > 1 {
			t.Fatalf("MerchantRisk(%s) = %v, want it in [0, 1]", name, r)
		}
		if r != fraud.MerchantRisk(name) {
			t.Fatalf("MerchantRisk(%s) changes", name)
		}
		if r >= 0.5 {
			high++
		}
	}
	if high < n/4 || high > n*35/100 {
		t.Errorf("%d of %d merchants score 0.5 or more, want about 30%%", high, n)
	}
}

func TestScore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		f     fraud.Features
		alert bool
	}{
		{"clean account, ordinary merchant", fraud.Features{FraudCount: 0, MerchantScore: 0.02, Amount: 100}, false},
		{"clean account, risky merchant", fraud.Features{FraudCount: 0, MerchantScore: 0.94, Amount: 100}, false},
		{"clean account, risky merchant, large amount", fraud.Features{FraudCount: 0, MerchantScore: 0.94, Amount: 10000}, true},
		{"one fraud, risky merchant", fraud.Features{FraudCount: 1, MerchantScore: 0.94, Amount: 100}, false},
		{"two frauds, ordinary merchant", fraud.Features{FraudCount: 2, MerchantScore: 0.02, Amount: 100}, false},
		{"two frauds, risky merchant", fraud.Features{FraudCount: 2, MerchantScore: 0.94, Amount: 100}, true},
		{"three frauds, safest merchant, nothing spent", fraud.Features{FraudCount: 3, MerchantScore: 0, Amount: 0}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := fraud.Score(tc.f)
			if s <= 0 || s >= 1 || (s > fraud.DefaultThreshold) != tc.alert {
				t.Errorf("Score(%+v) = %.3f, want alert %v at %v", tc.f, s, tc.alert, fraud.DefaultThreshold)
			}
		})
	}
	// more of any feature never lowers the score
	base := fraud.Features{FraudCount: 1, MerchantScore: 0.5, Amount: 100}
	for _, more := range []fraud.Features{{2, 0.5, 100}, {1, 0.6, 100}, {1, 0.5, 200}} {
		if fraud.Score(more) <= fraud.Score(base) {
			t.Errorf("Score(%+v) = %v is not above Score(%+v) = %v", more, fraud.Score(more), base, fraud.Score(base))
		}
	}
}

// decisions decodes the egress records of h: the decisions written to
// topic, in order.
func decisions(t *testing.T, h *functionstest.Harness, egress functions.TypeName, topic topology.Topic) []fraud.Decision {
	t.Helper()
	var out []fraud.Decision
	for _, e := range h.Egress() {
		if e.Egress != egress {
			continue
		}
		rec, err := functions.KafkaRecordType.As(e.Message)
		if err != nil {
			t.Fatal(err)
		}
		var d fraud.Decision
		if err := json.Unmarshal(rec.Value, &d); err != nil {
			t.Fatal(err)
		}
		if rec.Topic != string(topic) || rec.Key != d.Transaction.Account {
			t.Errorf("record to %s keyed %s, want %s keyed by the account %s", rec.Topic, rec.Key, topic, d.Transaction.Account)
		}
		out = append(out, d)
	}
	return out
}

// score runs a transaction through the four functions, as the runtime
// would deliver their messages.
func score(t *testing.T, h *functionstest.Harness, tx fraud.Transaction) {
	t.Helper()
	if err := h.Run(txAddr(tx.ID), fraud.TransactionType.Of(tx), 20); err != nil {
		t.Fatalf("score %s: %v", tx.ID, err)
	}
}

// TestTransactionsGatherFeaturesAndAlert runs whole conversations: the
// transaction asks the counter and the merchant, then the model, and
// writes every decision to scores and the risky ones to alerts. The window
// then passes on the fake clock and the same account scores low.
func TestTransactionsGatherFeaturesAndAlert(t *testing.T) {
	t.Parallel()
	h := functionstest.New(fraud.Config{}.Registry(), functionstest.WithTopology(fraud.Topology()))
	for range 3 {
		report(t, h, "acct-bad")
	}
	t0 := functionstest.Epoch
	txs := []fraud.Transaction{
		{ID: "t1", Account: "acct-bad", Merchant: "coffee-bar", Amount: 100, Time: t0},
		{ID: "t2", Account: "acct-good", Merchant: "coffee-bar", Amount: 100, Time: t0},
		{ID: "t3", Account: "acct-good", Merchant: "late-night-casino", Amount: 10000, Time: t0},
	}
	for _, tx := range txs {
		score(t, h, tx)
	}
	if err := h.Advance(fraud.DefaultWindow); err != nil {
		t.Fatal(err)
	}
	late := fraud.Transaction{ID: "t4", Account: "acct-bad", Merchant: "coffee-bar", Amount: 100, Time: t0.Add(fraud.DefaultWindow)}
	score(t, h, late)

	coffee, pawn := fraud.MerchantRisk("coffee-bar"), fraud.MerchantRisk("late-night-casino")
	decide := func(tx fraud.Transaction, f fraud.Features, source string) fraud.Decision {
		s := fraud.Score(f)
		return fraud.Decision{Transaction: tx, Features: f, Score: s, Alert: s > fraud.DefaultThreshold, MerchantSource: source}
	}
	want := []fraud.Decision{
		decide(txs[0], fraud.Features{FraudCount: 3, MerchantScore: coffee, Amount: 100}, fraud.SourceService),
		decide(txs[1], fraud.Features{FraudCount: 0, MerchantScore: coffee, Amount: 100}, fraud.SourceCache),
		decide(txs[2], fraud.Features{FraudCount: 0, MerchantScore: pawn, Amount: 10000}, fraud.SourceService),
		// 30 days later: the reports and the cached score have expired
		decide(late, fraud.Features{FraudCount: 0, MerchantScore: coffee, Amount: 100}, fraud.SourceService),
	}
	if diff := cmp.Diff(want, decisions(t, h, fraud.ScoresEgress, fraud.ScoresTopic)); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
	var alerted []string
	for _, d := range decisions(t, h, fraud.AlertsEgress, fraud.AlertsTopic) {
		alerted = append(alerted, d.Transaction.ID)
	}
	if want := []string{"t1", "t3"}; !cmp.Equal(want, alerted) {
		t.Errorf("alerts: got %v, want %v", alerted, want)
	}
	for _, tx := range append(txs, late) {
		if _, ok := functionstest.StateOf(h, txAddr(tx.ID), fraud.PendingState); ok {
			t.Errorf("%s: pending state left after the decision", tx.ID)
		}
	}
	if _, ok := functionstest.StateOf(h, txAddr("t4"), fraud.ScoredState); !ok {
		t.Error("t4: not marked as scored")
	}
	if len(h.Sent()) != 0 {
		t.Errorf("undelivered messages: %+v", h.Sent())
	}
}

// deliver delivers msgs sent by from, and what they cause, depth first.
// (Harness.Run delivers its first message without a caller, so it cannot
// continue a conversation begun with Invoke.)
func deliver(t *testing.T, h *functionstest.Harness, from functions.Address, msgs []functions.OutgoingMessage) {
	t.Helper()
	for _, m := range msgs {
		res, err := h.InvokeFrom(from, m.To, m.Message)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, h, m.To, res.Messages)
	}
}

// TestDuplicateTransactionsAreScoredOnce checks that a second record with
// the id of a transaction, while it is scored or after, is ignored; and
// that the marker expires after DuplicateWindow.
func TestDuplicateTransactionsAreScoredOnce(t *testing.T) {
	t.Parallel()
	h := functionstest.New(fraud.Config{}.Registry(), functionstest.WithTopology(fraud.Topology()))
	tx := fraud.Transaction{ID: "t1", Account: "acct-1", Merchant: "shop", Amount: 10}
	// in flight: the first record has asked, the second arrives
	res1, err := h.Invoke(txAddr("t1"), fraud.TransactionType.Of(tx))
	if err != nil || len(res1.Messages) != 2 {
		t.Fatalf("first record: %v, %+v; want two questions", err, res1)
	}
	res, err := h.Invoke(txAddr("t1"), fraud.TransactionType.Of(tx))
	if err != nil || len(res.Messages)+len(res.State) != 0 {
		t.Fatalf("duplicate in flight: %v, %+v; want no effect", err, res)
	}
	// finish the conversation of the first
	deliver(t, h, txAddr("t1"), res1.Messages)
	if got := decisions(t, h, fraud.ScoresEgress, fraud.ScoresTopic); len(got) != 1 {
		t.Fatalf("got %d decisions, want 1", len(got))
	}
	h.Reset()
	score(t, h, tx) // after the decision
	if len(h.Egress()) != 0 {
		t.Errorf("duplicate after the decision: egress %+v, want none", h.Egress())
	}
	if err := h.Advance(fraud.DuplicateWindow); err != nil {
		t.Fatal(err)
	}
	score(t, h, tx)
	if got := decisions(t, h, fraud.ScoresEgress, fraud.ScoresTopic); len(got) != 1 {
		t.Errorf("after DuplicateWindow: %d decisions, want 1 (the id is forgotten)", len(got))
	}
}

// TestStrayAnswersAreIgnored checks that answers to a transaction that did
// not ask (or no longer waits) change nothing.
func TestStrayAnswersAreIgnored(t *testing.T) {
	t.Parallel()
	h := functionstest.New(fraud.Config{}.Registry(), functionstest.WithTopology(fraud.Topology()))
	for _, msg := range []functions.Message{
		fraud.FraudCountType.Of(fraud.FraudCount{Account: "acct-1", Count: 3}),
		fraud.MerchantScoreType.Of(fraud.MerchantScore{Merchant: "shop", Score: 1}),
		fraud.ModelScoreType.Of(fraud.ModelScore{Score: 1}),
	} {
		res, err := h.InvokeFrom(counterOf("acct-1"), txAddr("t9"), msg)
		if err != nil || len(res.Messages)+len(res.Egress)+len(res.State) != 0 {
			t.Errorf("%s: got %v, %+v, want no effect", msg.TypeName(), err, res)
		}
	}
	// an answer for another account than the transaction's
	if _, err := h.Invoke(txAddr("t1"), fraud.TransactionType.Of(fraud.Transaction{ID: "t1", Account: "acct-1", Merchant: "shop"})); err != nil {
		t.Fatal(err)
	}
	if _, err := h.InvokeFrom(counterOf("acct-2"), txAddr("t1"), fraud.FraudCountType.Of(fraud.FraudCount{Account: "acct-2", Count: 3})); err != nil {
		t.Fatal(err)
	}
	if p, _ := functionstest.StateOf(h, txAddr("t1"), fraud.PendingState); p.FraudCount != nil {
		t.Errorf("pending took the count of another account: %+v", p)
	}
}

func TestRouters(t *testing.T) {
	t.Parallel()
	topo := fraud.Topology()
	route := func(topic topology.Topic, key, value string) ([]functions.OutgoingMessage, error) {
		for _, in := range topo.Ingresses {
			if in.Topic == topic {
				var k []byte
				if key != "" {
					k = []byte(key)
				}
				return in.Router(topology.Record{Topic: topic, Key: k, Value: []byte(value)})
			}
		}
		t.Fatalf("no ingress for %s", topic)
		return nil, nil
	}
	tests := []struct {
		name    string
		topic   topology.Topic
		key     string
		value   string
		to      functions.Address
		msg     functions.Message
		wantErr string
	}{
		{"transaction", fraud.TransactionsTopic, "acct-1", `{"id":"t1","account":"acct-1","merchant":"shop","amount":12.5}`,
			txAddr("t1"), fraud.TransactionType.Of(fraud.Transaction{ID: "t1", Account: "acct-1", Merchant: "shop", Amount: 12.5}), ""},
		{"transaction id from the key", fraud.TransactionsTopic, "t2", `{"account":"acct-1","merchant":"shop","amount":1}`,
			txAddr("t2"), fraud.TransactionType.Of(fraud.Transaction{ID: "t2", Account: "acct-1", Merchant: "shop", Amount: 1}), ""},
		{"transaction without id or key", fraud.TransactionsTopic, "", `{"account":"a","merchant":"m"}`, functions.Address{}, functions.Message{}, "no id"},
		{"transaction without account and merchant", fraud.TransactionsTopic, "t3", `{"amount":1}`, functions.Address{}, functions.Message{}, "no account\nno merchant"},
		{"negative amount", fraud.TransactionsTopic, "t3", `{"account":"a","merchant":"m","amount":-1}`, functions.Address{}, functions.Message{}, "negative amount"},
		{"transaction that is not JSON", fraud.TransactionsTopic, "t3", `t3`, functions.Address{}, functions.Message{}, "invalid character"},
		{"report", fraud.ConfirmedFraudTopic, "acct-1", `{"transaction":"t1"}`,
			counterOf("acct-1"), fraud.ReportType.Of(fraud.Report{Account: "acct-1", Transaction: "t1"}), ""},
		{"empty report", fraud.ConfirmedFraudTopic, "acct-1", "", counterOf("acct-1"), fraud.ReportType.Of(fraud.Report{Account: "acct-1"}), ""},
		{"the key is the account", fraud.ConfirmedFraudTopic, "acct-1", `{"account":"acct-2"}`,
			counterOf("acct-1"), fraud.ReportType.Of(fraud.Report{Account: "acct-1"}), ""},
		{"report without key", fraud.ConfirmedFraudTopic, "", `{"account":"acct-1"}`, functions.Address{}, functions.Message{}, "without a key"},
		{"report that is not JSON", fraud.ConfirmedFraudTopic, "acct-1", `yes`, functions.Address{}, functions.Message{}, "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := route(tc.topic, tc.key, tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %+v, %v, want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].To != tc.to || got[0].Message.TypeName() != tc.msg.TypeName() || string(got[0].Message.Bytes()) != string(tc.msg.Bytes()) {
				t.Errorf("got %+v, want one message %s to %s", got, tc.msg.Bytes(), tc.to)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  fraud.Config
		want []string
	}{
		{"zero", fraud.Config{}, nil},
		{"demo", fraud.Config{Window: 30 * time.Second, Threshold: 0.9, MerchantTTL: time.Minute, ServiceBudget: 50 * time.Millisecond}, nil},
		{"all wrong", fraud.Config{Window: -1, Threshold: 1, MerchantTTL: -1, ServiceBudget: -1}, []string{"window", "threshold", "merchant ttl", "service budget"}},
		{"negative threshold", fraud.Config{Threshold: -0.1}, []string{"threshold"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if (err == nil) != (tc.want == nil) {
				t.Fatalf("Validate: got %v, want errors about %v", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v does not mention %q", err, w)
				}
			}
		})
	}
}

func TestTopologyIsValid(t *testing.T) {
	t.Parallel()
	topo, reg := fraud.Build()
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, fn := range topo.Functions {
		if _, ok := reg.Lookup(fn); !ok {
			t.Errorf("function type %s is in the topology but not registered", fn)
		}
	}
	if got := len(reg.Types()); got != len(topo.Functions) {
		t.Errorf("registry has %d types, topology %d", got, len(topo.Functions))
	}
}

func ExampleScore() {
	for _, f := range []fraud.Features{
		{FraudCount: 0, MerchantScore: 0.1, Amount: 40},
		{FraudCount: 2, MerchantScore: 0.9, Amount: 40},
		{FraudCount: 3, MerchantScore: 0.1, Amount: 40},
	} {
		fmt.Printf("%+v: %.2f\n", f, fraud.Score(f))
	}
	// Output:
	// {FraudCount:0 MerchantScore:0.1 Amount:40}: 0.00
	// {FraudCount:2 MerchantScore:0.9 Amount:40}: 0.95
	// {FraudCount:3 MerchantScore:0.1 Amount:40}: 0.90
}
