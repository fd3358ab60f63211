package fraud

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// App is the application's name: its consumer group and the prefix of its
// internal topics.
const App = "fraud"

// The Kafka topics of the application.
const (
	// TransactionsTopic is an ingress: one JSON [Transaction] per record;
	// the key is not used (the transaction's id is, or the key when the id
	// is missing).
	TransactionsTopic topology.Topic = "transactions"
	// ConfirmedFraudTopic is an ingress: one record per confirmed fraud,
	// keyed by the account; the value is a JSON [Report] or empty.
	ConfirmedFraudTopic topology.Topic = "confirmed-fraud"
	// ScoresTopic receives a JSON [Decision] for every transaction, keyed
	// by the account.
	ScoresTopic topology.Topic = "scores"
	// AlertsTopic receives the decisions whose score is over the
	// threshold, keyed by the account.
	AlertsTopic topology.Topic = "alerts"
)

// The function types; their ids are in parentheses.
const (
	// TransactionFunction scores one transaction (transaction id).
	TransactionFunction functions.TypeName = "fraud/transaction"
	// CounterFunction counts the recent confirmed frauds of an account
	// (account).
	CounterFunction functions.TypeName = "fraud/counter"
	// MerchantFunction keeps the risk score of a merchant (merchant name).
	MerchantFunction functions.TypeName = "fraud/merchant"
	// ModelFunction scores feature vectors; it keeps no state (the
	// transaction id, so that it runs next to the transaction).
	ModelFunction functions.TypeName = "fraud/model"
)

// The egresses.
const (
	// ScoresEgress writes to ScoresTopic.
	ScoresEgress functions.TypeName = "fraud/scores"
	// AlertsEgress writes to AlertsTopic.
	AlertsEgress functions.TypeName = "fraud/alerts"
)

// Defaults of [Config.]
const (
	DefaultWindow      = 30 * 24 * time.Hour
	DefaultThreshold   = 0.8
	DefaultMerchantTTL = time.Hour
)

// Config holds the settings of the application. The zero value means the
// defaults.
type Config struct {
	// Window is how long a confirmed fraud counts; 0 means DefaultWindow
	// (30 days). A demo uses seconds.
	Window time.Duration
	// Threshold is the score over which a transaction raises an alert, in
	// (0, 1); 0 means DefaultThreshold.
	Threshold float64
	// MerchantTTL is how long a merchant keeps a score before it asks the
	// service again; 0 means DefaultMerchantTTL.
	MerchantTTL time.Duration
	// Service looks merchant scores up; nil means DemoMerchantService(0).
	Service MerchantService
	// ServiceBudget bounds a lookup: a slower one is abandoned and the
	// merchant answers FallbackScore, without keeping it. 0 means no
	// bound. Keep it short: the runtime invokes one function at a time,
	// so every lookup holds up every other message of the instance.
	ServiceBudget time.Duration
}

// Validate reports every problem of c, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("fraud: window %v: must be positive", c.Window))
	}
	if c.Threshold < 0 || c.Threshold >= 1 || math.IsNaN(c.Threshold) {
		errs = append(errs, fmt.Errorf("fraud: threshold %v: want a score between 0 and 1", c.Threshold))
	}
	if c.MerchantTTL < 0 {
		errs = append(errs, fmt.Errorf("fraud: merchant ttl %v: must be positive", c.MerchantTTL))
	}
	if c.ServiceBudget < 0 {
		errs = append(errs, fmt.Errorf("fraud: service budget %v: must be positive, or 0 for none", c.ServiceBudget))
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.MerchantTTL == 0 {
		c.MerchantTTL = DefaultMerchantTTL
	}
	if c.Service == nil {
		c.Service = DemoMerchantService(0)
	}
	return c
}

// Topology returns the application's topology. It leaves the partition
// count unset, so the --partitions flag decides it.
func Topology() topology.Topology {
	return topology.Topology{
		App:       App,
		Functions: []functions.TypeName{TransactionFunction, CounterFunction, MerchantFunction, ModelFunction},
		Ingresses: []topology.Ingress{
			{Topic: TransactionsTopic, ValueType: TransactionType.Name(), Router: routeTransaction},
			{Topic: ConfirmedFraudTopic, ValueType: ReportType.Name(), Router: routeReport},
		},
		Egresses: []topology.Egress{
			{ID: ScoresEgress, Topics: []topology.Topic{ScoresTopic}},
			{ID: AlertsEgress, Topics: []topology.Topic{AlertsTopic}},
		},
	}
}

// Registry returns a new registry with the four function types, set up by
// c. It panics if c is invalid (see [Config.Validate]).
func (c Config) Registry() *functions.Registry {
	if err := c.Validate(); err != nil {
		panic(err)
	}
	c = c.withDefaults()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     TransactionFunction,
		Function: transaction{threshold: c.Threshold}.function(),
		State:    []functions.StateSpec{PendingState, ScoredState},
		Egresses: []functions.TypeName{ScoresEgress, AlertsEgress},
	})
	reg.MustRegister(functions.Spec{
		Type:     CounterFunction,
		Function: counter{window: c.Window}.function(),
		State:    []functions.StateSpec{FraudCountState},
	})
	score := MerchantScoreState.ExpireAfterWrite(c.MerchantTTL)
	reg.MustRegister(functions.Spec{
		Type:     MerchantFunction,
		Function: merchant{score: score, service: c.Service, budget: c.ServiceBudget}.function(),
		State:    []functions.StateSpec{score},
	})
	reg.MustRegister(functions.Spec{
		Type:     ModelFunction,
		Function: functions.Router(functions.Handle(FeaturesType, model)),
	})
	return reg
}

// Build returns the application set up by c: [Topology] and
// [Config.Registry]. It panics if c is invalid.
func (c Config) Build() (topology.Topology, *functions.Registry) {
	return Topology(), c.Registry()
}

// Build returns the application with the default settings, a 30-day
// window among them.
func Build() (topology.Topology, *functions.Registry) {
	return Config{}.Build()
}

// ParseTransaction reads a record of TransactionsTopic: a JSON
// [Transaction] whose id, if missing, is the record key. It returns an
// error for bad JSON, a missing id, account or merchant, and an amount
// that is negative.
func ParseTransaction(key, value []byte) (Transaction, error) {
	var tx Transaction
	if err := json.Unmarshal(value, &tx); err != nil {
		return tx, fmt.Errorf("fraud: transaction: %w", err)
	}
	if tx.ID == "" {
		tx.ID = string(key)
	}
	var errs []error
	if tx.ID == "" {
		errs = append(errs, errors.New("no id (and no record key)"))
	}
	if tx.Account == "" {
		errs = append(errs, errors.New("no account"))
	}
	if tx.Merchant == "" {
		errs = append(errs, errors.New("no merchant"))
	}
	if tx.Amount < 0 {
		errs = append(errs, fmt.Errorf("negative amount %v", tx.Amount))
	}
	if len(errs) > 0 {
		return tx, fmt.Errorf("fraud: transaction %q: %w", tx.ID, errors.Join(errs...))
	}
	return tx, nil
}

// routeTransaction sends a transaction to its TransactionFunction.
func routeTransaction(rec topology.Record) ([]functions.OutgoingMessage, error) {
	tx, err := ParseTransaction(rec.Key, rec.Value)
	if err != nil {
		return nil, err
	}
	return []functions.OutgoingMessage{{
		To:      functions.Address{Type: TransactionFunction, ID: tx.ID},
		Message: TransactionType.Of(tx),
	}}, nil
}

// routeReport sends a confirmed fraud to the CounterFunction of the
// record's key.
func routeReport(rec topology.Record) ([]functions.OutgoingMessage, error) {
	if len(rec.Key) == 0 {
		return nil, errors.New("fraud: confirmed fraud without a key: the key is the account")
	}
	var r Report
	if len(rec.Value) > 0 {
		if err := json.Unmarshal(rec.Value, &r); err != nil {
			return nil, fmt.Errorf("fraud: confirmed fraud of %s: %w", rec.Key, err)
		}
	}
	r.Account = string(rec.Key)
	return []functions.OutgoingMessage{{
		To:      functions.Address{Type: CounterFunction, ID: r.Account},
		Message: ReportType.Of(r),
	}}, nil
}
