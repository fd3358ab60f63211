package topology

import (
	"errors"
	"fmt"
	"slices"

	"github.com/stateloop/stateloop/functions"
)

// This file holds the rules by which records enter and leave an
// application: which messages an ingress record becomes, and which Kafka
// record an egress message becomes. The runtime (package processor) and
// the test driver of package functions/functionstest both apply them
// through these methods, so that an application behaves the same in its
// tests as in production.

// Ingress returns the ingress that reads topic.
func (t Topology) Ingress(topic Topic) (Ingress, bool) {
	for _, in := range t.Ingresses {
		if in.Topic == topic {
			return in, true
		}
	}
	return Ingress{}, false
}

// Route returns the messages that the ingress record rec becomes: its
// Router's messages, or, without a Router, one message per target with
// the record key as the id and the value as a message of the ingress's
// ValueType. Route sets rec.ValueType to the ingress's before it calls the
// Router.
//
// It returns an error, and no messages, when rec.Topic is not an ingress
// of t, when the Router returns an error or panics, when a record without
// a key reaches an ingress without a Router, and when a message goes to an
// invalid address (an id that is empty, a function type that is not
// valid). The runtime sends such a record to the dead-letter topic with
// the error as the reason.
func (t Topology) Route(rec Record) ([]functions.OutgoingMessage, error) {
	in, ok := t.Ingress(rec.Topic)
	if !ok {
		return nil, fmt.Errorf("topology: topic %q is not an ingress of application %s", rec.Topic, t.App)
	}
	rec.ValueType = in.ValueType
	if in.Router != nil {
		msgs, err := callRouter(in.Router, rec)
		if err != nil {
			return nil, fmt.Errorf("topology: ingress router failed: %w", err)
		}
		for _, m := range msgs {
			if err := m.To.Validate(); err != nil {
				return nil, fmt.Errorf("topology: ingress record routed to an invalid address: %w", err)
			}
		}
		return msgs, nil
	}
	if rec.Key == nil {
		return nil, errors.New("topology: ingress record has no key: the key is the function id; give the record a key or set a router for the ingress")
	}
	if len(rec.Key) == 0 {
		// targets of a valid topology are valid function types; only the
		// id can be wrong
		return nil, fmt.Errorf("topology: ingress record routed to an invalid address: the record key, the function id, is empty")
	}
	msgs := make([]functions.OutgoingMessage, len(in.Targets))
	for i, target := range in.Targets {
		msgs[i] = functions.OutgoingMessage{
			To:      functions.Address{Type: target, ID: string(rec.Key)},
			Message: functions.NewMessage(in.ValueType, rec.Value),
		}
	}
	return msgs, nil
}

// callRouter calls r, turning a panic into an error: a router is user
// code, and a bad record must not stop the partition.
func callRouter(r Router, rec Record) (msgs []functions.OutgoingMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return r(rec)
}

// EgressRecord is the Kafka record that an egress message becomes.
type EgressRecord struct {
	Topic Topic
	// Key is nil for a record without a key.
	Key []byte
	// Value is never nil: an empty value is written as empty, not as a
	// tombstone.
	Value []byte
}

// EgressRecord returns the Kafka record that a function's egress message
// m becomes: m must be a Kafka record (see [functions.AsKafkaRecord]) to an egress
// of t, for one of the egress's topics (or any topic, with AnyTopic); a
// record that names no topic goes to the egress's first topic.
//
// It returns an error for an egress t does not have, a message of another
// type or that does not decode, a record with no topic for an egress with
// no topics, a topic the egress does not write to, and an internal topic
// (see [Topology.Reserved]). The runtime then fails the invocation that
// sent m: none of its effects are applied and its message goes to the
// dead-letter topic.
func (t Topology) EgressRecord(m functions.EgressMessage) (EgressRecord, error) {
	eg, ok := t.Egress(m.Egress)
	if !ok {
		return EgressRecord{}, fmt.Errorf("topology: unknown egress %s", m.Egress)
	}
	rec, ok, err := functions.AsKafkaRecord(m.Message) // StateFun 3.x's record or 2.x's
	if !ok {
		return EgressRecord{}, fmt.Errorf("topology: egress %s takes %s messages (or StateFun 2.x's %s), got %s",
			m.Egress, functions.KafkaRecordType.Name(), functions.KafkaRecordName2, m.Message.TypeName())
	}
	if err != nil {
		return EgressRecord{}, fmt.Errorf("topology: egress %s: %w", m.Egress, err)
	}
	topic := Topic(rec.Topic)
	if topic == "" {
		if len(eg.Topics) == 0 {
			return EgressRecord{}, fmt.Errorf("topology: egress %s writes to the topic each record names, and this record names none", m.Egress)
		}
		topic = eg.Topics[0]
	}
	if !eg.AnyTopic && !slices.Contains(eg.Topics, topic) {
		return EgressRecord{}, fmt.Errorf("topology: egress %s does not write to topic %q", m.Egress, topic)
	}
	if what, ok := t.Reserved(topic); ok {
		return EgressRecord{}, fmt.Errorf("topology: egress %s: topic %q is %s; egress records never go to internal topics", m.Egress, topic, what)
	}
	out := EgressRecord{Topic: topic, Value: rec.Value}
	if out.Value == nil {
		out.Value = []byte{}
	}
	if rec.Key != "" {
		out.Key = []byte(rec.Key)
	}
	return out, nil
}
