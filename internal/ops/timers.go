package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor"
)

// Timer is a delayed message waiting in the timers topic.
type Timer struct {
	// Sender is the address that sent it, which owns its token.
	Sender functions.Address
	// Token is its cancellation token as people write it: the function's
	// token, or "auto:<hex>" for one the runtime gave a message sent
	// without a token (see DisplayToken).
	Token string
	Due   time.Time
	// Message is the message, to its target, with the sender as caller.
	Message   wire.Envelope
	Partition int32
	Offset    int64
}

// autoPrefix starts the token the runtime gives a delayed message sent
// without one (processor/timers.go), which people cannot type.
const autoPrefix = "\x00"

// DisplayToken writes a token for people: a runtime-made token as
// "auto:<hex>", any other as it is.
func DisplayToken(tok string) string {
	if rest, ok := strings.CutPrefix(tok, autoPrefix); ok {
		return "auto:" + rest
	}
	return tok
}

// ParseToken inverts DisplayToken.
func ParseToken(s string) string {
	if rest, ok := strings.CutPrefix(s, "auto:"); ok {
		return autoPrefix + rest
	}
	return s
}

// TimerFilter chooses delayed messages: by their sender's function type
// and id, and by their target's ("" for any).
type TimerFilter struct {
	Type   functions.TypeName
	ID     string
	ToType functions.TypeName
	ToID   string
}

func (f TimerFilter) match(t *Timer) bool {
	return (f.Type == "" || t.Sender.Type == f.Type) && (f.ID == "" || t.Sender.ID == f.ID) &&
		(f.ToType == "" || t.Message.Target.Type == f.ToType) && (f.ToID == "" || t.Message.Target.ID == f.ToID)
}

// ParseTarget parses a target of TimerFilter: a function type
// (namespace/name) or an address (namespace/name/id).
func ParseTarget(s string) (functions.TypeName, string, error) {
	parts := strings.SplitN(s, "/", 3)
	var fn functions.TypeName
	var err error
	if len(parts) >= 2 {
		fn, err = functions.ParseTypeName(parts[0] + "/" + parts[1])
	}
	if len(parts) < 2 || err != nil || (len(parts) == 3 && parts[2] == "") {
		return "", "", fmt.Errorf("%q: want namespace/name or namespace/name/id", s)
	}
	if len(parts) == 3 {
		return fn, parts[2], nil
	}
	return fn, "", nil
}

// Timers reads the timers topic read_committed and returns the delayed
// messages waiting that the filter chooses, by due time. With the
// sender's id given it reads only that id's partition; else every one.
// A record that does not decode is reported in errs, with the partitions
// that could not be read.
func (c *Client) Timers(ctx context.Context, f TimerFilter) (timers []Timer, errs []error) {
	topic := string(c.topo.TimersTopic())
	var parts []int32
	if f.ID != "" {
		parts = append(parts, processor.PartitionFor(f.ID, c.topo.PartitionCount()))
	} else {
		for p := range c.topo.PartitionCount() {
			parts = append(parts, p)
		}
	}
	errs = c.eachPartition(topic, parts, func(p int32, e kafkaread.PartitionEnds) error {
		// the topic is compacted: the last record of a key is its state
		latest := make(map[string]kafkaread.Record)
		_, err := kafkaread.ReadCommitted(ctx, c.reader, topic, p, e.Start, e.LSO, func(r kafkaread.Record) error {
			if r.Value == nil {
				delete(latest, string(r.Key))
			} else {
				latest[string(r.Key)] = r
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ops: read %s/%d: %w", topic, p, err)
		}
		var bad []error
		for _, r := range latest {
			sender, tok, err := wire.DecodeTimerKey(r.Key)
			var tm wire.Timer
			if err == nil {
				tm, err = wire.DecodeTimer(r.Value)
			}
			if err != nil {
				bad = append(bad, fmt.Errorf("ops: %s/%d offset %d: %w", topic, p, r.Offset, err))
				continue
			}
			t := Timer{Sender: sender, Token: DisplayToken(tok), Due: time.UnixMilli(tm.DueUnixMilli).UTC(), Message: tm.Message, Partition: p, Offset: r.Offset}
			if f.match(&t) {
				timers = append(timers, t)
			}
		}
		return errors.Join(bad...)
	})
	slices.SortFunc(timers, func(a, b Timer) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.Sender.String(), b.Sender.String()), cmp.Compare(a.Token, b.Token))
	})
	return timers, errs
}

// CancelTimers cancels delayed messages of the sender, through the
// runtime in order with the sender's messages: those with the tokens
// given (as Timer.Token shows them), or with all every one it has
// waiting then. It returns the messages cancelled; a token with none
// waiting (already sent, or never there) is no error.
func (c *Client) CancelTimers(ctx context.Context, sender functions.Address, tokens []string, all bool, wait time.Duration) ([]Timer, error) {
	if len(tokens) == 0 && !all {
		return nil, errors.New("ops: no tokens to cancel: give tokens, or cancel all")
	}
	tc := &wire.TimerCancel{All: all}
	for _, tok := range tokens {
		tc.Tokens = append(tc.Tokens, ParseToken(tok))
	}
	res, err := c.do(ctx, Op{To: sender, Control: &wire.Control{Cancel: tc}}, wait)
	if err != nil {
		return nil, err
	}
	var out []Timer
	for _, ct := range res.Cancelled {
		out = append(out, Timer{Sender: sender, Token: DisplayToken(ct.Token), Due: time.UnixMilli(ct.Timer.DueUnixMilli).UTC(), Message: ct.Timer.Message, Offset: -1,
			Partition: processor.PartitionFor(sender.ID, c.topo.PartitionCount())})
	}
	return out, nil
}
