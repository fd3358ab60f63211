package ops

import (
	"time"
	"unicode/utf8"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// The JSON forms of what the operator sees, one for the CLI's --format
// json and the HTTP API alike.

// maxShownValue bounds the bytes of a record value shown.
const maxShownValue = 4 << 10

// DeadLetterView is a dead letter for people and programs.
type DeadLetterView struct {
	Ref          string            `json:"ref"` // partition/offset
	Partition    int32             `json:"partition"`
	Offset       int64             `json:"offset"`
	Time         time.Time         `json:"time"`
	Key          string            `json:"key,omitempty"`
	Reason       string            `json:"reason"`
	FunctionType string            `json:"function_type,omitempty"`
	FunctionID   string            `json:"function_id,omitempty"`
	Source       *SourceView       `json:"source,omitempty"`
	Message      *MessageView      `json:"message,omitempty"` // a loop record's message
	Value        any               `json:"value,omitempty"`   // any other record's value (codec.Display)
	ValueDropped bool              `json:"value_dropped,omitempty"`
	Truncated    bool              `json:"truncated,omitempty"` // only the first 4 KiB of the value are shown
	Headers      map[string]string `json:"headers"`
	// Replayed is when a replay of it was delivered; NotReplayable says
	// why it cannot be replayed ("" if it can).
	Replayed      *time.Time `json:"replayed,omitempty"`
	NotReplayable string     `json:"not_replayable,omitempty"`
}

// SourceView is the record a dead letter came from.
type SourceView struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// MessageView is a message.
type MessageView struct {
	Target string `json:"target"`
	Caller string `json:"caller,omitempty"`
	Type   string `json:"type"`
	Value  any    `json:"value"`
}

// View returns the dead letter for people and programs, with values shown
// by their type (codec.Display) and cut at 4 KiB.
func (d *DeadLetter) View(topo topology.Topology) DeadLetterView {
	v := DeadLetterView{Ref: d.Ref(), Partition: d.Partition, Offset: d.Offset, Time: d.Time, Reason: d.Reason,
		Headers: d.Headers, ValueDropped: d.ValueDropped, Replayed: d.Replayed}
	if d.Key != nil {
		v.Key = string(d.Key)
	}
	if d.Address != nil {
		v.FunctionType, v.FunctionID = string(d.Address.Type), d.Address.ID
	}
	if d.Source != nil {
		v.Source = &SourceView{Topic: d.Source.Topic, Partition: d.Source.Partition, Offset: d.Source.Offset}
	}
	switch {
	case d.Message != nil && d.Message.Control != nil:
		v.Message = &MessageView{Target: d.Message.Target.String(), Type: "(" + d.Message.Control.Kind() + ")"}
	case d.Message != nil:
		v.Message = messageView(*d.Message)
		v.Truncated = len(d.Message.Argument.Bytes()) > maxShownValue
	case d.Value != nil && !d.ValueDropped:
		v.Value, v.Truncated = Display("", d.Value)
	}
	if _, err := d.Replay(topo); err != nil {
		v.NotReplayable = err.Error()
	}
	return v
}

func messageView(env wire.Envelope) *MessageView {
	m := &MessageView{Target: env.Target.String(), Type: string(env.Argument.TypeName())}
	if env.Caller != nil {
		m.Caller = env.Caller.String()
	}
	m.Value, _ = Display(string(env.Argument.TypeName()), env.Argument.Bytes())
	return m
}

// Display shows a value as codec.Display does, cut at 4 KiB (at a rune
// boundary, then shown as text or base64).
func Display(typeName string, b []byte) (v any, truncated bool) {
	if len(b) > maxShownValue {
		b = b[:maxShownValue]
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
		return codec.Display("", b), true
	}
	return codec.Display(typeName, b), false
}

// TimerView is a delayed message for people and programs.
type TimerView struct {
	Sender    string       `json:"sender"`
	Token     string       `json:"token"`
	Due       time.Time    `json:"due"`
	Message   *MessageView `json:"message"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset,omitempty"`
}

// View returns the delayed message for people and programs.
func (t *Timer) View() TimerView {
	return TimerView{Sender: t.Sender.String(), Token: t.Token, Due: t.Due, Message: messageView(t.Message), Partition: t.Partition, Offset: t.Offset}
}

// StateView is the answer to a state edit: the address's values before
// and after, as `stateloop state get` shows them.
type StateView struct {
	Address string                           `json:"address"`
	Before  map[string]gokaview.DisplayValue `json:"before"`
	After   map[string]gokaview.DisplayValue `json:"after"`
}

// StateResultView returns the state before and after a state edit.
func StateResultView(res wire.ControlResult) StateView {
	return StateView{Address: res.Address.String(), Before: gokaview.Display(gokaview.State(res.Before)), After: gokaview.Display(gokaview.State(res.After))}
}
