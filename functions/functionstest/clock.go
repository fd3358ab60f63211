package functionstest

import (
	"fmt"
	"slices"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
)

// Epoch is the time of a new Harness's clock.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Delayed is a delayed message waiting in a [Harness] for its time.
type Delayed struct {
	Due   time.Time
	From  functions.Address
	Token string // "" when sent without one
	functions.OutgoingMessage

	seq int // order of sending, for messages due at the same time
}

// Now returns the harness's clock: [Epoch] at first, moved only by
// [Harness.Advance].
func (h *Harness) Now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

// Pending returns the delayed messages waiting, earliest due first.
func (h *Harness) Pending() []Delayed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.delayed)
}

// schedule applies the delayed messages and cancellations of a successful
// invocation of from, as the runtime does: a token belongs to the sender,
// a message sent with the token of a waiting one replaces it, and a
// cancellation of an unknown or delivered token does nothing.
func (h *Harness) schedule(from functions.Address, delayed []driver.DelayedMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range delayed {
		if d.Token != "" {
			h.delayed = slices.DeleteFunc(h.delayed, func(p Delayed) bool { return p.From == from && p.Token == d.Token })
		}
		if d.Cancel {
			continue
		}
		h.seq++
		h.delayed = append(h.delayed, Delayed{Due: h.now.Add(d.Delay), From: from, Token: d.Token,
			OutgoingMessage: functions.OutgoingMessage{To: d.To, Message: d.Message}, seq: h.seq})
	}
	slices.SortStableFunc(h.delayed, func(a, b Delayed) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
}

// Advance moves the clock forward by d and delivers every delayed message
// that comes due, in due order, each at its due time and with its sender
// as caller; delayed messages those deliveries send are delivered too when
// they come due within d. Other messages and egress records they send are
// recorded (see [Harness.Sent] and [Harness.Egress]). It returns the first
// error of a delivery; the clock then stands at that message's due time
// and the message is dropped, as the runtime would dead-letter it.
func (h *Harness) Advance(d time.Duration) error {
	return h.advance(d, func(next Delayed) error {
		from := next.From
		if _, err := h.invokeAndRecord(&from, next.To, next.Message); err != nil {
			return fmt.Errorf("functionstest: Advance: delayed message from %s to %s due at %v: %w", next.From, next.To, next.Due, err)
		}
		return nil
	})
}

// advance moves the clock forward by d, calling deliver for every delayed
// message that comes due, in due order, with the clock at its due time
// (and h.mu not held). It stops at the first error of deliver and returns
// it; the clock then stands at that message's due time.
func (h *Harness) advance(d time.Duration, deliver func(Delayed) error) error {
	if d < 0 {
		return fmt.Errorf("functionstest: Advance(%v): the clock only moves forward", d)
	}
	h.mu.Lock()
	end := h.now.Add(d)
	h.mu.Unlock()
	for {
		h.mu.Lock()
		if len(h.delayed) == 0 || h.delayed[0].Due.After(end) {
			h.now = end
			h.mu.Unlock()
			return nil
		}
		next := h.delayed[0]
		h.delayed = h.delayed[1:]
		if next.Due.After(h.now) {
			h.now = next.Due
		}
		h.mu.Unlock()
		if err := deliver(next); err != nil {
			return err
		}
	}
}
