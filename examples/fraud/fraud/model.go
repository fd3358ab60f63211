package fraud

import (
	"errors"
	"math"

	"github.com/stateloop/stateloop/functions"
)

// The weights of the stand-in model: a logistic function of the features.
const (
	modelBias          = -6.0
	modelFraudCount    = 2.5 // per confirmed fraud within the window
	modelMerchantScore = 4.0 // times the merchant's risk score in [0, 1]
	modelAmount        = 0.8 // times ln(1 + amount/100)
)

// Score is the stand-in model: the probability in (0, 1) that a
// transaction with features f is fraudulent, a logistic function of the
// account's recent fraud count, the merchant's risk score and the log of
// the amount. With the default threshold of 0.8, an account with three
// recent frauds raises an alert whatever it buys, one with two at a risky
// merchant, and a clean account only for a large amount at a risky
// merchant.
func Score(f Features) float64 {
	z := modelBias +
		modelFraudCount*float64(f.FraudCount) +
		modelMerchantScore*f.MerchantScore +
		modelAmount*math.Log1p(max(f.Amount, 0)/100)
	return 1 / (1 + math.Exp(-z))
}

// model answers a feature vector with its score, to the caller.
func model(ctx functions.Context, f Features) error {
	caller, ok := ctx.Caller()
	if !ok {
		return functions.Permanent(errors.New("fraud: model: features without a caller to answer; send them from a function"))
	}
	ctx.Send(caller, ModelScoreType.Of(ModelScore{Score: Score(f)}))
	return nil
}
