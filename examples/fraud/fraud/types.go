package fraud

import (
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
)

// Transaction is a card transaction, the value of a record of
// TransactionsTopic.
type Transaction struct {
	ID       string    `json:"id"`
	Account  string    `json:"account"`
	Merchant string    `json:"merchant"`
	Amount   float64   `json:"amount"`
	Time     time.Time `json:"time,omitzero"`
}

// Report is a confirmed fraud, the value of a record of
// ConfirmedFraudTopic (whose key is the account). Every field is optional:
// an empty value counts as a report too.
type Report struct {
	Account     string    `json:"account,omitempty"`
	Transaction string    `json:"transaction,omitempty"`
	Time        time.Time `json:"time,omitzero"`
}

// CountQuery asks a counter for the recent fraud count of its account; the
// answer, a [FraudCount], goes to the caller.
type CountQuery struct {
	Transaction string `json:"transaction,omitempty"`
}

// FraudCount is a counter's answer: the number of confirmed fraud reports
// of Account within the window.
type FraudCount struct {
	Account string `json:"account"`
	Count   int64  `json:"count"`
}

// MerchantQuery asks a merchant for its risk score; the answer, a
// [MerchantScore], goes to the caller.
type MerchantQuery struct {
	Transaction string `json:"transaction,omitempty"`
}

// Where a [MerchantScore] comes from.
const (
	// SourceService: the merchant looked the score up just now.
	SourceService = "service"
	// SourceCache: the merchant had the score in its state.
	SourceCache = "cache"
	// SourceFallback: the lookup failed or took longer than the budget;
	// the score is FallbackScore and is not kept.
	SourceFallback = "fallback"
)

// MerchantScore is a merchant's answer: its risk score in [0, 1], higher
// is riskier.
type MerchantScore struct {
	Merchant string  `json:"merchant"`
	Score    float64 `json:"score"`
	Source   string  `json:"source"`
}

// Features is the feature vector of a transaction that the model scores.
type Features struct {
	// FraudCount is the account's number of confirmed frauds within the
	// window.
	FraudCount int64 `json:"fraud_count"`
	// MerchantScore is the merchant's risk score in [0, 1].
	MerchantScore float64 `json:"merchant_score"`
	// Amount is the transaction's amount.
	Amount float64 `json:"amount"`
}

// ModelScore is the model's answer: the probability that the transaction
// is fraudulent.
type ModelScore struct {
	Score float64 `json:"score"`
}

// Decision is what the application writes for a scored transaction: to
// ScoresTopic for every transaction and to AlertsTopic when Alert is set,
// keyed by the account.
type Decision struct {
	Transaction Transaction `json:"transaction"`
	Features    Features    `json:"features"`
	Score       float64     `json:"score"`
	Alert       bool        `json:"alert"`
	// MerchantSource tells where the merchant score came from (SourceService,
	// SourceCache or SourceFallback).
	MerchantSource string `json:"merchant_source"`
}

// Pending is the state of a transaction being scored: the transaction and
// the answers received so far (nil until they arrive).
type Pending struct {
	Transaction   Transaction    `json:"transaction"`
	FraudCount    *int64         `json:"fraud_count,omitempty"`
	MerchantScore *MerchantScore `json:"merchant_score,omitempty"`
	// Asked is set once the model has been asked.
	Asked bool `json:"asked,omitempty"`
}

// The message types of the application, all JSON. Their namespace,
// fraud.types, keeps them apart from the function types in fraud.
var (
	// TransactionType is the message a transaction record becomes, sent
	// to TransactionFunction at the transaction's id.
	TransactionType = functions.NewType("fraud.types/transaction", codec.JSON[Transaction]())
	// ReportType is the message a confirmed-fraud record becomes, sent to
	// CounterFunction at the record's key.
	ReportType = functions.NewType("fraud.types/confirmed-fraud", codec.JSON[Report]())
	// CountQueryType asks CounterFunction for a [FraudCount].
	CountQueryType = functions.NewType("fraud.types/count-query", codec.JSON[CountQuery]())
	// FraudCountType is the counter's answer.
	FraudCountType = functions.NewType("fraud.types/fraud-count", codec.JSON[FraudCount]())
	// MerchantQueryType asks MerchantFunction for a [MerchantScore].
	MerchantQueryType = functions.NewType("fraud.types/merchant-query", codec.JSON[MerchantQuery]())
	// MerchantScoreType is the merchant's answer.
	MerchantScoreType = functions.NewType("fraud.types/merchant-score", codec.JSON[MerchantScore]())
	// FeaturesType asks ModelFunction for a [ModelScore].
	FeaturesType = functions.NewType("fraud.types/features", codec.JSON[Features]())
	// ModelScoreType is the model's answer.
	ModelScoreType = functions.NewType("fraud.types/model-score", codec.JSON[ModelScore]())

	// reportExpiredType is the delayed message a counter sends itself to
	// take a report back when the window has passed.
	reportExpiredType = functions.NewType("fraud.types/report-expired", codec.JSON[Report]())
)

// The state of the function types.
var (
	// FraudCountState is a counter's number of reports within the window;
	// unset when there are none.
	FraudCountState = functions.NewState("fraud_count", functions.LongType)
	// MerchantScoreState is a merchant's cached risk score. The registry
	// declares it with ExpireAfterWrite(Config.MerchantTTL).
	MerchantScoreState = functions.NewState("score", functions.DoubleType)
	// PendingState is a transaction's partial feature vector while it is
	// being scored.
	PendingState = functions.NewState("pending", functions.NewType("fraud.types/pending", codec.JSON[Pending]()))
	// ScoredState marks a transaction that was scored, so that a duplicate
	// record of it is not scored again; it expires after DuplicateWindow.
	ScoredState = functions.NewState("scored", functions.BoolType).ExpireAfterWrite(DuplicateWindow)
)

// DuplicateWindow is how long a transaction remembers that it was scored:
// a record with the same id within this time is ignored.
const DuplicateWindow = 24 * time.Hour
