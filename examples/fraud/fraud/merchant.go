package fraud

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"time"

	"github.com/stateloop/stateloop/functions"
)

// MerchantService looks up the risk score of a merchant, in [0, 1], at a
// third-party service. It is called during an invocation, so it blocks the
// runtime's worker while it runs (see [Config.ServiceBudget]); it must
// return when ctx is done.
type MerchantService func(ctx context.Context, merchant string) (float64, error)

// FallbackScore is the merchant risk score used when the service fails or
// is too slow: neither trusted nor suspect.
const FallbackScore = 0.5

// MerchantRisk is the stand-in for the third-party service: a risk score
// in [0, 1) that depends only on the merchant's name. It is skewed low,
// as real merchants mostly are harmless: about 30% score 0.5 or more.
func MerchantRisk(merchant string) float64 {
	h := fnv.New64a()
	h.Write([]byte(merchant))
	// FNV's high bits hardly change with the last byte of the name, so
	// mix them (MurmurHash3's finalizer) before taking a uniform [0, 1)
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	u := float64(x>>11) / (1 << 53)
	return math.Round(u*u*1000) / 1000
}

// DemoMerchantService returns a [MerchantService] that answers
// [MerchantRisk] after latency, as a remote service would.
func DemoMerchantService(latency time.Duration) MerchantService {
	return func(ctx context.Context, merchant string) (float64, error) {
		if latency > 0 {
			t := time.NewTimer(latency)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		return MerchantRisk(merchant), nil
	}
}

// merchant is the function type MerchantFunction: per merchant, its risk
// score, looked up when the cached one has expired.
type merchant struct {
	score   functions.State[float64] // MerchantScoreState, expiring
	service MerchantService
	budget  time.Duration
}

// query answers the caller with the merchant's score: the cached one, or
// a fresh one from the service, which it caches.
func (m merchant) query(ctx functions.Context, _ MerchantQuery) error {
	caller, ok := ctx.Caller()
	if !ok {
		return functions.Permanent(errors.New("fraud: merchant: score query without a caller to answer; send it from a function"))
	}
	name := ctx.Self().ID
	answer := MerchantScore{Merchant: name}
	if s, ok := m.score.Get(ctx); ok {
		answer.Score, answer.Source = s, SourceCache
	} else {
		s, err := m.lookup(ctx, name)
		switch {
		case err == nil:
			m.score.Set(ctx, s)
			answer.Score, answer.Source = s, SourceService
		case ctx.Err() != nil:
			return err // the runtime is stopping: retry later
		default:
			answer.Score, answer.Source = FallbackScore, SourceFallback
		}
	}
	ctx.Send(caller, MerchantScoreType.Of(answer))
	return nil
}

// lookup asks the service, within the budget.
func (m merchant) lookup(ctx context.Context, name string) (float64, error) {
	if m.budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.budget)
		defer cancel()
	}
	s, err := m.service(ctx, name)
	if err == nil && (math.IsNaN(s) || s < 0 || s > 1) {
		err = errors.New("fraud: merchant service: score out of [0, 1]")
	}
	return s, err
}

func (m merchant) function() functions.Function {
	return functions.Router(functions.Handle(MerchantQueryType, m.query))
}
