package smoke

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// timerCheck is how often the runtime sends the delayed messages that are
// due (docs/timers.md): a delayed message leaves up to this much plus a
// commit interval after its due time.
const timerCheck = 10 * time.Millisecond

// phaseConfirming is the phase of a run that asks every id for its count
// once more after the wait for delayed messages.
const phaseConfirming = "confirming"

// settleTime returns how long a delayed message delivered twice can go on
// changing counts after every id has reached its count: the longest chain
// of delayed messages to an increment, each up to maxDelay plus the check
// interval, plus two commit intervals per message of the longest chain (one
// for the sender's transaction, one for the receiver's). It is 0 when no
// delayed message leads to an increment.
func settleTime(longest Chain, maxDelay, commitInterval time.Duration) time.Duration {
	if longest.Delayed == 0 {
		return 0
	}
	return time.Duration(longest.Delayed)*(maxDelay+timerCheck) + time.Duration(longest.Messages)*2*commitInterval
}

// verify sends a Verify command with its expected count to every id every
// VerifyInterval and reads the results.
//
// Without delayed messages it passes (nil) as soon as every id has reported
// its expected count, as upstream. A delayed message delivered twice can
// still raise a count after that, up to the settle time later (a chain of
// delayed messages under it): with delayed messages the run passes only
// when, after that wait, every id has reported its count again in answer
// to a Verify sent after the wait.
//
// It fails at once with a *DuplicateError when an id reports more than its
// count. It reports a *LossError at the timeout, but not before every
// delayed message must have fired: the settle time plus a verify interval
// after the last command was acknowledged, and the settle time plus the
// confirmation round after every id reached its count.
func (r *run) verify(ctx context.Context, prod sarama.AsyncProducer, rd *reader, client sarama.Client) error {
	cfg := r.cfg
	r.mu.Lock()
	expected := r.tracker.Snapshot()
	longest := r.tracker.Longest()
	produceErrors := r.failed
	r.mu.Unlock()
	settle := settleTime(longest, cfg.MaxDelay, cfg.CommitInterval)
	r.res.Longest, r.res.Settle = longest, settle

	n := len(expected)
	last := make([]IDCount, n)
	for i := range last {
		last[i] = IDCount{ID: int32(i), Expected: expected[i]}
	}

	// the deadline: the timeout, or later while delayed messages may fire
	deadline := r.start.Add(cfg.Timeout)
	if t := time.Now().Add(settle + cfg.VerifyInterval); t.After(deadline) {
		deadline = t
	}
	vctx, vcancel := context.WithCancel(ctx)
	defer vcancel()
	timer := time.AfterFunc(time.Until(deadline), vcancel)
	defer func() { timer.Stop() }()
	extend := func(t time.Time) {
		if t.After(deadline) && timer.Stop() {
			deadline = t
			timer = time.AfterFunc(time.Until(t), vcancel)
		}
	}

	var (
		sent, received = make([]int, n), make([]int, n) // Verify commands and results per id
		matched        = make([]bool, n)                // reported exactly the expected count
		nMatched       int
		// confirmFrom is nil until the wait for delayed messages is over;
		// then a result of id i answers a Verify sent after the wait when
		// it is the (confirmFrom[i]+1)-th or a later one (an id's Verify
		// commands and results keep their order: one partition each)
		confirmFrom []int
		confirmed   = make([]bool, n)
		nConfirmed  int
		waited      <-chan time.Time // the end of the wait for delayed messages
	)
	topic := string(CommandsTopic(cfg.App))
	round := func() error {
		for id := range n {
			sc := SourceCommand{Target: int32(id), Commands: Commands{Verify{Expected: expected[id]}}}
			msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.Itoa(id)), Value: sarama.ByteEncoder(sc.Marshal())}
			select {
			case prod.Input() <- msg:
				sent[id]++
			case <-vctx.Done():
				return vctx.Err()
			}
		}
		r.res.Rounds++
		return nil
	}
	// ended explains the end of vctx: the caller's cancellation, or the
	// deadline and the ids that did not get there
	ended := func() error {
		if ctx.Err() != nil {
			return r.interrupted(ctx, ctx.Err())
		}
		loss := &LossError{IDs: n, Timeout: deadline.Sub(r.start).Round(100 * time.Millisecond), DeadLetters: -1, DLQTopic: cfg.App + "-dlq"}
		for id := range n {
			if !matched[id] || nMatched == n && !confirmed[id] {
				loss.Missing = append(loss.Missing, last[id])
			}
		}
		if client != nil {
			if dl, err := countRecords(client, loss.DLQTopic); err == nil {
				loss.DeadLetters = dl
			}
			loss.Partitions = partitionStates(client, cfg.App, cfg.App+"-loop", string(CommandsTopic(cfg.App)))
		}
		return loss
	}

	if err := round(); err != nil {
		return ended()
	}
	tick := time.NewTicker(cfg.VerifyInterval)
	defer tick.Stop()
	for {
		select {
		case res := <-rd.results:
			if res.ID < 0 || int(res.ID) >= n {
				return fmt.Errorf("smoke: verification result for id %d, outside 0 to %d: is another run using app %s?", res.ID, n-1, cfg.App)
			}
			if res.Expected != expected[res.ID] {
				return fmt.Errorf("smoke: verification result for id %d carries expected count %d, the driver sent %d: is another run using app %s?",
					res.ID, res.Expected, expected[res.ID], cfg.App)
			}
			id := res.ID
			received[id]++
			last[id].Actual, last[id].Reported = res.Actual, true
			if res.Actual > res.Expected {
				return &DuplicateError{IDCount: last[id], ProduceErrors: produceErrors, AfterAllMatched: nMatched == n}
			}
			if res.Actual < res.Expected {
				continue // still in flight
			}
			if !matched[id] {
				matched[id] = true
				nMatched++
				r.mu.Lock()
				r.verified = nMatched
				r.mu.Unlock()
				if nMatched == n {
					if settle == 0 {
						return nil
					}
					r.res.AllMatched = time.Since(r.start)
					r.setPhase(fmt.Sprintf("waiting %v for delayed messages", settle.Round(100*time.Millisecond)))
					waited = time.After(settle)
					extend(time.Now().Add(settle + max(5*cfg.VerifyInterval, 10*time.Second)))
				}
			}
			if confirmFrom != nil && !confirmed[id] && received[id] > confirmFrom[id] {
				confirmed[id] = true
				nConfirmed++
				r.mu.Lock()
				r.confirmed = nConfirmed
				r.mu.Unlock()
				if nConfirmed == n {
					return nil
				}
			}
		case <-waited:
			waited = nil
			confirmFrom = slices.Clone(sent)
			r.setPhase(phaseConfirming)
			if err := round(); err != nil {
				return ended()
			}
			tick.Reset(cfg.VerifyInterval)
		case err := <-rd.errs:
			return err
		case err := <-r.exited:
			return err
		case <-tick.C:
			if err := round(); err != nil {
				return ended()
			}
		case <-vctx.Done():
			return ended()
		}
	}
}
