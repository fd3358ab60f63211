package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/stateloop/stateloop/examples/fraud/fraud"
)

// generatorConfig says what a generator makes.
type generatorConfig struct {
	Seed      uint64
	Accounts  int
	Merchants int
	// FraudRate is the fraction of transactions that are fraudulent and
	// are confirmed as fraud.
	FraudRate float64
}

// fraudsPerCard is how many frauds a compromised account suffers before
// its card is blocked and the fraudsters move on to another account.
const fraudsPerCard = 5

// event is one generated transaction; Fraud means that it is fraudulent
// and a confirmed-fraud report for its account follows.
type event struct {
	Transaction fraud.Transaction
	Fraud       bool
}

// generator makes a deterministic stream of transactions from a seed.
// Fraud is concentrated, as it is in life: a few accounts (one in a
// hundred) are compromised at any time, and their fraudulent transactions
// are large and go to risky merchants. Their recent fraud count then grows
// quickly, and their transactions, the honest ones too, raise alerts.
type generator struct {
	cfg         generatorConfig
	rng         *rand.Rand
	n           int
	risky       []int // merchants with a risk score of 0.5 or more
	compromised []compromised
}

type compromised struct {
	account int
	left    int // frauds until the card is blocked
}

func newGenerator(cfg generatorConfig) *generator {
	g := &generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	for m := range cfg.Merchants {
		if fraud.MerchantRisk(merchantName(m)) >= 0.5 {
			g.risky = append(g.risky, m)
		}
	}
	if len(g.risky) == 0 {
		for m := range cfg.Merchants {
			g.risky = append(g.risky, m)
		}
	}
	for range max(1, cfg.Accounts/100) {
		g.compromised = append(g.compromised, compromised{account: g.rng.IntN(cfg.Accounts), left: fraudsPerCard})
	}
	return g
}

func accountName(i int) string  { return fmt.Sprintf("acct-%04d", i) }
func merchantName(i int) string { return fmt.Sprintf("merchant-%03d", i) }

// next returns the next transaction, at time now.
func (g *generator) next(now time.Time) event {
	g.n++
	e := event{Transaction: fraud.Transaction{ID: fmt.Sprintf("t%d-%d", g.cfg.Seed, g.n), Time: now}}
	if g.rng.Float64() < g.cfg.FraudRate {
		c := &g.compromised[g.rng.IntN(len(g.compromised))]
		e.Fraud = true
		e.Transaction.Account = accountName(c.account)
		e.Transaction.Merchant = merchantName(g.risky[g.rng.IntN(len(g.risky))])
		e.Transaction.Amount = g.amount(600)
		if c.left--; c.left == 0 {
			*c = compromised{account: g.rng.IntN(g.cfg.Accounts), left: fraudsPerCard}
		}
		return e
	}
	e.Transaction.Account = accountName(g.rng.IntN(g.cfg.Accounts))
	e.Transaction.Merchant = merchantName(g.rng.IntN(g.cfg.Merchants))
	e.Transaction.Amount = g.amount(40)
	return e
}

// amount draws a log-normal amount with the given median, in cents.
func (g *generator) amount(median float64) float64 {
	return math.Round(median*math.Exp(0.8*g.rng.NormFloat64())*100) / 100
}
