package fraud

import (
	"errors"
	"time"

	"github.com/stateloop/stateloop/functions"
)

// counter is the function type CounterFunction: per account, the number
// of confirmed fraud reports within the window.
type counter struct {
	window time.Duration
}

// report counts a confirmed fraud and schedules its expiry: a delayed
// message to itself that takes it back once the window has passed.
func (c counter) report(ctx functions.Context, r Report) error {
	n, _ := FraudCountState.Get(ctx)
	FraudCountState.Set(ctx, n+1)
	r.Account = ctx.Self().ID
	ctx.SendAfter(c.window, ctx.Self(), reportExpiredType.Of(r))
	return nil
}

// expire takes back a report whose window has passed. Only the counter
// itself sends these.
func (c counter) expire(ctx functions.Context, _ Report) error {
	if caller, ok := ctx.Caller(); !ok || caller != ctx.Self() {
		return functions.Permanent(errors.New("fraud: counter: a report may only be expired by its own counter"))
	}
	switch n, _ := FraudCountState.Get(ctx); {
	case n > 1:
		FraudCountState.Set(ctx, n-1)
	default:
		FraudCountState.Clear(ctx) // nothing left: no record in the table
	}
	return nil
}

// query answers the caller with the current count.
func (c counter) query(ctx functions.Context, _ CountQuery) error {
	caller, ok := ctx.Caller()
	if !ok {
		return functions.Permanent(errors.New("fraud: counter: count query without a caller to answer; send it from a function"))
	}
	n, _ := FraudCountState.Get(ctx)
	ctx.Send(caller, FraudCountType.Of(FraudCount{Account: ctx.Self().ID, Count: n}))
	return nil
}

func (c counter) function() functions.Function {
	return functions.Router(
		functions.Handle(ReportType, c.report),
		functions.Handle(reportExpiredType, c.expire),
		functions.Handle(CountQueryType, c.query),
	)
}
