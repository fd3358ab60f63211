package fraud

import (
	"encoding/json"

	"github.com/stateloop/stateloop/functions"
)

// transaction is the function type TransactionFunction: per transaction,
// it gathers the features from the counter and the merchant, asks the
// model, and writes the decision.
type transaction struct {
	threshold float64
}

// start asks the account's counter and the merchant for their features. A
// transaction that is being scored or was scored already (a duplicate
// record) is ignored.
func (t transaction) start(ctx functions.Context, tx Transaction) error {
	if _, scored := ScoredState.Get(ctx); scored {
		return nil
	}
	if _, pending := PendingState.Get(ctx); pending {
		return nil
	}
	PendingState.Set(ctx, Pending{Transaction: tx})
	ctx.Send(functions.Address{Type: CounterFunction, ID: tx.Account}, CountQueryType.Of(CountQuery{Transaction: tx.ID}))
	ctx.Send(functions.Address{Type: MerchantFunction, ID: tx.Merchant}, MerchantQueryType.Of(MerchantQuery{Transaction: tx.ID}))
	return nil
}

// fraudCount keeps the counter's answer.
func (t transaction) fraudCount(ctx functions.Context, c FraudCount) error {
	p, ok := PendingState.Get(ctx)
	if !ok || p.FraudCount != nil || c.Account != p.Transaction.Account {
		return nil // not asked, or answered already
	}
	p.FraudCount = &c.Count
	t.askModel(ctx, p)
	return nil
}

// merchantScore keeps the merchant's answer.
func (t transaction) merchantScore(ctx functions.Context, s MerchantScore) error {
	p, ok := PendingState.Get(ctx)
	if !ok || p.MerchantScore != nil || s.Merchant != p.Transaction.Merchant {
		return nil
	}
	p.MerchantScore = &s
	t.askModel(ctx, p)
	return nil
}

// askModel stores p and, once both answers are in, sends the feature
// vector to the model.
func (t transaction) askModel(ctx functions.Context, p Pending) {
	if p.FraudCount != nil && p.MerchantScore != nil && !p.Asked {
		p.Asked = true
		ctx.Send(functions.Address{Type: ModelFunction, ID: ctx.Self().ID}, FeaturesType.Of(features(p)))
	}
	PendingState.Set(ctx, p)
}

// score writes the decision: to the scores egress always, to the alerts
// egress when the score is over the threshold. The transaction then
// forgets its features and remembers that it was scored.
func (t transaction) score(ctx functions.Context, s ModelScore) error {
	p, ok := PendingState.Get(ctx)
	if !ok || !p.Asked {
		return nil
	}
	d := Decision{
		Transaction:    p.Transaction,
		Features:       features(p),
		Score:          s.Score,
		Alert:          s.Score > t.threshold,
		MerchantSource: p.MerchantScore.Source,
	}
	b, err := json.Marshal(d)
	if err != nil {
		return functions.Permanent(err)
	}
	key := p.Transaction.Account
	ctx.SendEgress(ScoresEgress, functions.KafkaMessage(string(ScoresTopic), key, b))
	if d.Alert {
		ctx.SendEgress(AlertsEgress, functions.KafkaMessage(string(AlertsTopic), key, b))
	}
	PendingState.Clear(ctx)
	ScoredState.Set(ctx, true)
	return nil
}

func features(p Pending) Features {
	return Features{FraudCount: *p.FraudCount, MerchantScore: p.MerchantScore.Score, Amount: p.Transaction.Amount}
}

func (t transaction) function() functions.Function {
	return functions.Router(
		functions.Handle(TransactionType, t.start),
		functions.Handle(FraudCountType, t.fraudCount),
		functions.Handle(MerchantScoreType, t.merchantScore),
		functions.Handle(ModelScoreType, t.score),
	)
}
