package functionstest_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
	"github.com/stateloop/stateloop/topology"
)

// The application of these tests: a bank whose accounts (test/account,
// id = account) take deposits from the topic deposits (keyed by account)
// and transfers from the topic transfers (JSON, routed by the field
// "from"). A transfer debits the account, which asks the other account to
// credit the amount; the credited account replies with its new balance.
// Every change of a balance is written to the topic balances.
const (
	accountType functions.TypeName = "test/account"
	auditType   functions.TypeName = "test/audit"

	depositsTopic  topology.Topic = "deposits"
	transfersTopic topology.Topic = "transfers"
	balancesTopic  topology.Topic = "balances"
)

type transfer struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

type balance struct {
	Account string `json:"account"`
	Balance int64  `json:"balance"`
}

var (
	depositType  = functions.NewType("test/deposit", codec.JSON[int64]())
	transferType = functions.NewType("test/transfer", codec.JSON[transfer]())
	creditType   = functions.NewType("test/credit", codec.JSON[int64]())
	reminderType = functions.NewType("test/reminder", codec.Text())

	balanceState = functions.NewState("balance", functions.LongType)
	askersState  = functions.NewState("askers", functions.NewType("test/askers", codec.JSON[[]functions.Address]()))

	balances = functions.NewKafkaEgress("test/balances", string(balancesTopic), codec.JSON[balance]())
)

type bank struct {
	mu    sync.Mutex
	calls []string // "caller->self: what", in invocation order
}

func (b *bank) log(ctx functions.Context, what string) {
	from := "ingress"
	if c, ok := ctx.Caller(); ok {
		from = c.String()
	}
	b.mu.Lock()
	b.calls = append(b.calls, fmt.Sprintf("%s->%s: %s", from, ctx.Self(), what))
	b.mu.Unlock()
}

func (b *bank) setBalance(ctx functions.Context, n int64) {
	balanceState.Set(ctx, n)
	balances.Send(ctx, ctx.Self().ID, balance{Account: ctx.Self().ID, Balance: n})
}

func (b *bank) account() functions.Function {
	return functions.Router(
		functions.Handle(depositType, func(ctx functions.Context, n int64) error {
			b.log(ctx, "deposit "+strconv.FormatInt(n, 10))
			if n < 0 {
				return errors.New("negative deposit")
			}
			bal, _ := balanceState.Get(ctx)
			b.setBalance(ctx, bal+n)
			ctx.Reply(functions.LongType.Of(bal + n)) // dropped for a record from Kafka
			if n >= 1000 {
				ctx.SendAfterWithToken(time.Hour, "big", ctx.Self(), reminderType.Of("check the big deposit"))
			}
			if n == 999 {
				ctx.CancelDelayed("big")
			}
			return nil
		}),
		functions.Handle(transferType, func(ctx functions.Context, t transfer) error {
			b.log(ctx, fmt.Sprintf("transfer %d to %s", t.Amount, t.To))
			bal, _ := balanceState.Get(ctx)
			if t.Amount > bal {
				return functions.Permanent(fmt.Errorf("insufficient funds: %d < %d", bal, t.Amount))
			}
			b.setBalance(ctx, bal-t.Amount)
			ctx.Send(functions.Address{Type: accountType, ID: t.To}, creditType.Of(t.Amount))
			if caller, ok := ctx.Caller(); ok {
				// remember who asked, to answer when the credit is confirmed
				askers, _ := askersState.Get(ctx)
				askersState.Set(ctx, append(askers, caller))
			}
			return nil
		}),
		functions.Handle(creditType, func(ctx functions.Context, n int64) error {
			b.log(ctx, "credit "+strconv.FormatInt(n, 10))
			bal, _ := balanceState.Get(ctx)
			b.setBalance(ctx, bal+n)
			ctx.Reply(functions.LongType.Of(bal + n))
			return nil
		}),
		functions.Handle(functions.LongType, func(ctx functions.Context, n int64) error {
			// the credited account's confirmation: answer the HTTP caller
			b.log(ctx, "confirmed "+strconv.FormatInt(n, 10))
			askers, _ := askersState.Get(ctx)
			if len(askers) > 0 {
				from, _ := ctx.Caller()
				ctx.Send(askers[0], functions.StringType.Of(fmt.Sprintf("sent; %s now has %d", from.ID, n)))
				askersState.Set(ctx, askers[1:])
			}
			return nil
		}),
		functions.Handle(reminderType, func(ctx functions.Context, s string) error {
			b.log(ctx, "reminder "+s)
			ctx.Send(functions.Address{Type: auditType, ID: ctx.Self().ID}, functions.StringType.Of(s))
			return nil
		}),
	)
}

func (b *bank) audit() functions.Function {
	return functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
		b.log(ctx, "audit "+s)
		return nil
	}))
}

func (b *bank) registry() *functions.Registry {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: accountType, Function: b.account(),
		State: []functions.StateSpec{balanceState, askersState}, Egresses: []functions.TypeName{balances.ID()}})
	reg.MustRegister(functions.Spec{Type: auditType, Function: b.audit()})
	return reg
}

func bankTopology() topology.Topology {
	return topology.Topology{
		App:       "bank",
		Functions: []functions.TypeName{accountType, auditType},
		Ingresses: []topology.Ingress{
			{Topic: depositsTopic, ValueType: depositType.Name(), Targets: []functions.TypeName{accountType}},
			{Topic: transfersTopic, ValueType: transferType.Name(), Router: topology.JSONFieldRouter("from", accountType)},
		},
		Egresses: []topology.Egress{{ID: balances.ID(), Topics: []topology.Topic{balancesTopic}}},
	}
}

func newBank(t *testing.T, opts ...functionstest.DriverOption) (*functionstest.TopologyDriver, *bank) {
	t.Helper()
	b := &bank{}
	d, err := functionstest.NewTopologyDriver(bankTopology(), b.registry(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d, b
}

func account(id string) functions.Address { return functions.Address{Type: accountType, ID: id} }

func deposit(t *testing.T, d *functionstest.TopologyDriver, id string, n int64) {
	t.Helper()
	if err := functionstest.PipeValue(d, depositsTopic, id, depositType.Codec(), n); err != nil {
		t.Fatal(err)
	}
}

func balanceOf(d *functionstest.TopologyDriver, id string) int64 {
	n, _ := functionstest.StateOf(d, account(id), balanceState)
	return n
}

// TestTopologyDriverRunsTheWholeApplication pipes records through both
// ingresses (by key, by a JSON router) and follows a transfer through two
// functions to the egress, in the order the runtime delivers.
func TestTopologyDriverRunsTheWholeApplication(t *testing.T) {
	d, b := newBank(t)
	deposit(t, d, "alice", 100)
	deposit(t, d, "bob", 5)
	if err := d.Pipe(transfersTopic, "", []byte(`{"from":"alice","to":"bob","amount":30}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ingress->test/account/alice: deposit 100",
		"ingress->test/account/bob: deposit 5",
		"ingress->test/account/alice: transfer 30 to bob",
		"test/account/alice->test/account/bob: credit 30",
		"test/account/bob->test/account/alice: confirmed 35",
	}
	if diff := cmp.Diff(want, b.calls); diff != "" {
		t.Errorf("invocations (-want +got):\n%s", diff)
	}
	got, err := functionstest.ReadValues(d, balancesTopic, balances.Codec())
	if err != nil {
		t.Fatal(err)
	}
	wantBalances := []balance{{"alice", 100}, {"bob", 5}, {"alice", 70}, {"bob", 35}}
	if diff := cmp.Diff(wantBalances, got); diff != "" {
		t.Errorf("balances topic (-want +got):\n%s", diff)
	}
	if a, b := balanceOf(d, "alice"), balanceOf(d, "bob"); a != 70 || b != 35 {
		t.Errorf("state: alice %d, bob %d; want 70, 35", a, b)
	}
	recs := d.Records(balancesTopic)
	if len(recs) != 4 || string(recs[3].Key) != "bob" || recs[3].From != account("bob") || recs[3].Egress != balances.ID() || !recs[3].Time.Equal(functionstest.Epoch) {
		t.Errorf("got records %+v, want 4, the last from bob keyed bob at Epoch", recs)
	}
	if len(d.DeadLetters()) != 0 {
		t.Errorf("dead letters: %v", d.DeadLetters())
	}
}

// TestTopologyDriverDeliversInSendingOrder: messages from one address to
// another arrive in the order sent, and each message's consequences come
// after the messages sent before it (first sent, first delivered).
func TestTopologyDriverDeliversInSendingOrder(t *testing.T) {
	var got []string
	fan := functions.FunctionFunc(func(ctx functions.Context, m functions.Message) error {
		s, _ := functions.StringType.As(m)
		got = append(got, ctx.Self().ID+":"+s)
		if ctx.Self().ID == "root" {
			for i := range 3 {
				ctx.Send(functions.Address{Type: "test/fan", ID: "leaf"}, functions.StringType.Of(strconv.Itoa(i)))
				ctx.Send(functions.Address{Type: "test/fan", ID: "other"}, functions.StringType.Of(strconv.Itoa(i)))
			}
		}
		return nil
	})
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/fan", Function: fan})
	topo := topology.Topology{App: "fan", Functions: []functions.TypeName{"test/fan"},
		Ingresses: []topology.Ingress{{Topic: "in", ValueType: functions.StringType.Name(), Targets: []functions.TypeName{"test/fan"}}}}
	d, err := functionstest.NewTopologyDriver(topo, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Pipe("in", "root", functions.StringType.Of("go").Bytes()); err != nil {
		t.Fatal(err)
	}
	want := []string{"root:go", "leaf:0", "other:0", "leaf:1", "other:1", "leaf:2", "other:2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

// TestTopologyDriverDelayedMessagesWaitForTheClock: a delayed message is
// delivered by Advance at its due time, with its sender as caller, and
// what it causes is processed then; a cancelled one never is.
func TestTopologyDriverDelayedMessagesWaitForTheClock(t *testing.T) {
	d, b := newBank(t)
	deposit(t, d, "alice", 1000) // reminds in an hour
	deposit(t, d, "bob", 2000)
	deposit(t, d, "bob", 999) // cancels bob's reminder
	if p := d.Pending(); len(p) != 1 || p[0].To != account("alice") || !p[0].Due.Equal(functionstest.Epoch.Add(time.Hour)) {
		t.Fatalf("pending: %+v, want alice's reminder due at Epoch+1h", p)
	}
	b.calls = nil
	if err := d.Advance(59 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(b.calls) != 0 {
		t.Errorf("before the due time: %v, want nothing delivered", b.calls)
	}
	if err := d.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"test/account/alice->test/account/alice: reminder check the big deposit",
		"test/account/alice->test/audit/alice: audit check the big deposit",
	}
	if diff := cmp.Diff(want, b.calls); diff != "" {
		t.Errorf("invocations (-want +got):\n%s", diff)
	}
	if len(d.Pending()) != 0 || !d.Now().Equal(functionstest.Epoch.Add(time.Hour)) {
		t.Errorf("after: pending %v, clock %v", d.Pending(), d.Now())
	}
}

// TestTopologyDriverStateExpiresOnTheClock: expiring state expires on the
// driver's clock, as in the runtime.
func TestTopologyDriverStateExpiresOnTheClock(t *testing.T) {
	last := functions.NewState("last", functions.StringType).ExpireAfterWrite(10 * time.Minute)
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/memo", State: []functions.StateSpec{last},
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			last.Set(ctx, s)
			return nil
		}))})
	topo := topology.Topology{App: "memo", Functions: []functions.TypeName{"test/memo"}}
	d, err := functionstest.NewTopologyDriver(topo, reg)
	if err != nil {
		t.Fatal(err)
	}
	memo := functions.Address{Type: "test/memo", ID: "m"}
	if err := d.Send(memo, functions.StringType.Of("hello")); err != nil {
		t.Fatal(err)
	}
	if err := d.Advance(9 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, ok := functionstest.StateOf(d, memo, last); !ok || v != "hello" {
		t.Errorf("after 9 minutes: %q, %v; want hello", v, ok)
	}
	if err := d.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, ok := functionstest.StateOf(d, memo, last); ok {
		t.Errorf("after 10 minutes: %q, want it expired", v)
	}
}

// TestTopologyDriverRequestGetsTheReply: Request is an HTTP request with
// ?wait=: the reply may come straight from the function, or later, from
// the function that kept the caller, after other functions ran.
func TestTopologyDriverRequestGetsTheReply(t *testing.T) {
	d, _ := newBank(t)
	got, err := d.Request(account("alice"), depositType.Of(10))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := functions.LongType.As(got); err != nil || n != 10 {
		t.Errorf("reply to the deposit: %v, %v; want the balance 10", n, err)
	}
	got, err = d.Request(account("alice"), transferType.Of(transfer{From: "alice", To: "bob", Amount: 4}))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := functions.StringType.As(got); err != nil || s != "sent; bob now has 4" {
		t.Errorf("reply to the transfer: %q, %v; want the confirmation", s, err)
	}
	_, err = d.Request(functions.Address{Type: auditType, ID: "x"}, functions.StringType.Of("hi"))
	if !errors.Is(err, functionstest.ErrNoReply) {
		t.Errorf("a function that does not reply: got %v, want ErrNoReply", err)
	}
}

// TestTopologyDriverReportsMistakesAsTheRuntimeDoes: what the runtime
// turns into a dead letter is a dead letter here, with the runtime's
// reason; the other messages are delivered all the same, and a failed
// invocation leaves no effect.
func TestTopologyDriverReportsMistakesAsTheRuntimeDoes(t *testing.T) {
	tests := []struct {
		name string
		do   func(d *functionstest.TopologyDriver) error
		is   error  // errors.Is the error, if not nil
		want string // in the dead letter's error
	}{
		{name: "record without a key", do: func(d *functionstest.TopologyDriver) error {
			return d.Pipe(depositsTopic, "", []byte("5"))
		}, want: "ingress record has no key"},
		{name: "router refuses the record", do: func(d *functionstest.TopologyDriver) error {
			return d.Pipe(transfersTopic, "", []byte(`{"to":"bob","amount":1}`))
		}, want: `ingress router failed: route by JSON field "from": no field "from"`},
		{name: "message to an unknown function type", do: func(d *functionstest.TopologyDriver) error {
			return d.Send(functions.Address{Type: "test/nobody", ID: "x"}, functions.StringType.Of("hi"))
		}, is: functions.ErrUnknownFunction, want: "unknown function type test/nobody"},
		{name: "function error", do: func(d *functionstest.TopologyDriver) error {
			return d.Pipe(depositsTopic, "alice", []byte("-5"))
		}, want: "negative deposit"},
		{name: "message that does not decode", do: func(d *functionstest.TopologyDriver) error {
			return d.Pipe(depositsTopic, "alice", []byte("five"))
		}, want: "decode message test/deposit"},
		{name: "unhandled message type", do: func(d *functionstest.TopologyDriver) error {
			return d.Send(account("alice"), functions.BoolType.Of(true))
		}, is: functions.ErrUnhandledType, want: "unhandled message type io.statefun.types/bool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newBank(t)
			deposit(t, d, "alice", 50)
			err := tc.do(d)
			var dl functionstest.DeadLetter
			if !errors.As(err, &dl) || !strings.Contains(dl.Error(), tc.want) {
				t.Fatalf("got %v, want a dead letter containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("got %v, want it to wrap %v", err, tc.is)
			}
			if got := d.DeadLetters(); len(got) != 1 || got[0].Error() != dl.Error() {
				t.Errorf("DeadLetters() = %v, want the one returned", got)
			}
			if n := balanceOf(d, "alice"); n != 50 {
				t.Errorf("alice's balance %d, want 50: nothing of a dead letter applies", n)
			}
			deposit(t, d, "alice", 1) // the application goes on
			if n := balanceOf(d, "alice"); n != 51 {
				t.Errorf("after another deposit: %d, want 51", n)
			}
		})
	}
}

// TestTopologyDriverEgressMistakesFailTheInvocation: an egress record the
// topology refuses fails the invocation that sent it, so that its state
// change does not apply either, as in the runtime.
func TestTopologyDriverEgressMistakesFailTheInvocation(t *testing.T) {
	count := functions.NewState("n", functions.LongType)
	for _, tc := range []struct {
		name string
		send func(ctx functions.Context)
		want string
		is   error
	}{
		{"a topic the egress does not write to", func(ctx functions.Context) {
			ctx.SendEgress("test/out", functions.KafkaMessage("elsewhere", "k", []byte("v")))
		}, `invocation of test/f/a sent an invalid egress record: topology: egress test/out does not write to topic "elsewhere"`, nil},
		{"an internal topic", func(ctx functions.Context) {
			ctx.SendEgress("test/out", functions.KafkaMessage("app-loop", "k", []byte("v")))
		}, "egress records never go to internal topics", nil},
		{"not a Kafka record", func(ctx functions.Context) {
			ctx.SendEgress("test/out", functions.StringType.Of("v"))
		}, "takes type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord messages", nil},
		{"an egress the Spec does not declare", func(ctx functions.Context) {
			ctx.SendEgress("test/other", functions.KafkaMessage("out", "k", []byte("v")))
		}, "undeclared egress test/other", functions.ErrUndeclaredEgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := functions.NewRegistry()
			reg.MustRegister(functions.Spec{Type: "test/f", State: []functions.StateSpec{count}, Egresses: []functions.TypeName{"test/out"},
				Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
					count.Set(ctx, 1)
					tc.send(ctx)
					return nil
				})})
			topo := topology.Topology{App: "app", Functions: []functions.TypeName{"test/f"},
				Egresses: []topology.Egress{{ID: "test/out", Topics: []topology.Topic{"out"}, AnyTopic: tc.name == "an internal topic"}}}
			d, err := functionstest.NewTopologyDriver(topo, reg)
			if err != nil {
				t.Fatal(err)
			}
			a := functions.Address{Type: "test/f", ID: "a"}
			err = d.Send(a, functions.StringType.Of("go"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a dead letter containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("got %v, want it to wrap %v", err, tc.is)
			}
			if n, ok := functionstest.StateOf(d, a, count); ok {
				t.Errorf("state set to %d, want nothing applied", n)
			}
			if recs := d.Records("out"); len(recs) != 0 {
				t.Errorf("records %v, want none", recs)
			}
		})
	}
}

// TestNewTopologyDriverChecksTheApplication: the checks of the runtime at
// start-up, every problem at once.
func TestNewTopologyDriverChecksTheApplication(t *testing.T) {
	b := &bank{}
	reg := b.registry()
	reg.MustRegister(functions.Spec{Type: "test/extra", Function: b.audit(), Egresses: []functions.TypeName{"test/missing"}})
	topo := bankTopology()
	topo.Functions = append(topo.Functions, "test/unserved")
	topo.Ingresses = append(topo.Ingresses, topology.Ingress{Topic: "bank-loop", ValueType: "test/x", Targets: []functions.TypeName{accountType}})
	_, err := functionstest.NewTopologyDriver(topo, reg, functionstest.WithMaxInvocations(0))
	for _, want := range []string{
		"function type test/extra is registered but not in the topology",
		"function type test/extra declares egress test/missing, which the topology does not have",
		"function type test/unserved is in the topology but neither registered nor served",
		`topic "bank-loop" is the loop topic of application bank`,
		"WithMaxInvocations(0): want at least 1",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to contain %q", err, want)
		}
	}
	if _, err := functionstest.NewTopologyDriver(bankTopology(), nil); err == nil {
		t.Error("nil registry: got no error")
	}
}

func TestTopologyDriverPipeToATopicThatIsNoIngress(t *testing.T) {
	d, b := newBank(t)
	err := d.Pipe(balancesTopic, "alice", []byte("1"))
	if err == nil || !strings.Contains(err.Error(), `topic "balances" is not an ingress of application bank; its ingresses: [deposits transfers]`) {
		t.Errorf("got %v", err)
	}
	if len(b.calls) != 0 || len(d.DeadLetters()) != 0 {
		t.Errorf("calls %v, dead letters %v; want none", b.calls, d.DeadLetters())
	}
}

// TestTopologyDriverStopsEndlessMessaging: functions that message each
// other without end fail the test instead of hanging it.
func TestTopologyDriverStopsEndlessMessaging(t *testing.T) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/echo", Function: functions.FunctionFunc(func(ctx functions.Context, m functions.Message) error {
		ctx.Send(ctx.Self(), m)
		return nil
	})})
	topo := topology.Topology{App: "echo", Functions: []functions.TypeName{"test/echo"}}
	d, err := functionstest.NewTopologyDriver(topo, reg, functionstest.WithMaxInvocations(50))
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(functions.Address{Type: "test/echo", ID: "e"}, functions.StringType.Of("again"))
	if !errors.Is(err, functionstest.ErrTooManyInvocations) || !strings.Contains(err.Error(), "stopped after 50") {
		t.Errorf("got %v, want ErrTooManyInvocations after 50", err)
	}
}

func TestTopologyDriverReadRecordsReadsOn(t *testing.T) {
	d, _ := newBank(t)
	deposit(t, d, "alice", 1)
	deposit(t, d, "alice", 2)
	if got := d.ReadRecords(balancesTopic); len(got) != 2 {
		t.Fatalf("first read: %d records, want 2", len(got))
	}
	if got := d.ReadRecords(balancesTopic); len(got) != 0 {
		t.Errorf("second read: %v, want nothing new", got)
	}
	deposit(t, d, "alice", 3)
	got, err := functionstest.ReadValues(d, balancesTopic, balances.Codec())
	if err != nil || len(got) != 1 || got[0].Balance != 6 {
		t.Errorf("third read: %v, %v; want alice's balance 6", got, err)
	}
	if len(d.Records(balancesTopic)) != 3 {
		t.Errorf("Records: %d, want all 3", len(d.Records(balancesTopic)))
	}
	if _, err := functionstest.Values(d.Records(balancesTopic), codec.Int64()); err == nil {
		t.Error("Values with the wrong codec: got no error")
	}
}

func TestTopologyDriverSetState(t *testing.T) {
	d, _ := newBank(t)
	if err := functionstest.SetState(d, account("carol"), balanceState, 40); err != nil {
		t.Fatal(err)
	}
	if err := d.Pipe(transfersTopic, "", []byte(`{"from":"carol","to":"dave","amount":40}`)); err != nil {
		t.Fatal(err)
	}
	if c, dv := balanceOf(d, "carol"), balanceOf(d, "dave"); c != 0 || dv != 40 {
		t.Errorf("carol %d, dave %d; want 0, 40", c, dv)
	}
}

// TestTopologyDriverConcurrentUse: the driver may be used from several
// goroutines; deliveries do not interleave.
func TestTopologyDriverConcurrentUse(t *testing.T) {
	d, _ := newBank(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if err := d.Pipe(depositsTopic, "acct-"+strconv.Itoa(i%2), []byte("1")); err != nil {
					t.Error(err)
				}
				_ = d.Records(balancesTopic)
			}
		}()
	}
	wg.Wait()
	if a, b := balanceOf(d, "acct-0"), balanceOf(d, "acct-1"); a != 40 || b != 40 {
		t.Errorf("balances %d, %d; want 40 each", a, b)
	}
}
