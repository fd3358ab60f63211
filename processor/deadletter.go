package processor

import (
	"fmt"

	"github.com/stateloop/stateloop/functions"
)

// poisoned is a consumed record whose output can never be produced.
type poisoned struct {
	reason string
	// dropValue: even the dead letter with the record's value failed
	dropValue bool
}

// aside is a changelog record that recovery left out of the local store
// because it does not decode; it goes to the dead-letter topic in the
// session's next transaction.
type aside struct {
	rec    *record
	reason string
	target functions.Address
}

// deadLetter writes the record src to the dead-letter topic with the
// reason in its headers, inside the transaction t.
func (s *session) deadLetter(t *txn, src *record, reason string, target *functions.Address) {
	s.deadLetterValue(t, src, reason, target, true)
}

func (s *session) deadLetterValue(t *txn, src *record, reason string, target *functions.Address, withValue bool) {
	headers := []header{
		{Key: []byte("stateloop.error"), Value: []byte(reason)},
		{Key: []byte("stateloop.source.topic"), Value: []byte(src.Topic)},
		{Key: []byte("stateloop.source.partition"), Value: []byte(itoa(int64(src.Partition)))},
		{Key: []byte("stateloop.source.offset"), Value: []byte(itoa(src.Offset))},
	}
	if target != nil {
		headers = append(headers,
			header{Key: []byte("stateloop.function.type"), Value: []byte(target.Type)},
			header{Key: []byte("stateloop.function.id"), Value: []byte(target.ID)})
	}
	headers = traceHeaders(headers, src.trace)
	o := &output{Topic: string(s.p.topo.DLQTopic()), Headers: headers, Key: src.Key, src: src}
	if withValue {
		o.Value = src.Value
	} else {
		o.Headers = append(o.Headers, header{Key: []byte("stateloop.value.dropped"), Value: []byte("the record's value could not be written to the dead-letter topic")})
	}
	// the dead-letter topic may have been created with another partition
	// count than the application's internal topics
	n, err := s.partitionCount(o.Topic)
	if err != nil {
		s.setFatal(fmt.Errorf("processor: dead-letter topic: %w", err))
		return
	}
	if src.Key != nil {
		o.Partition = partitionFor(string(src.Key), n)
	} else {
		o.Partition = src.Partition % n
	}
	s.produce(o)
	s.p.count(func(s *Stats) { s.DeadLetters++ })
	var fn functions.TypeName
	if target != nil {
		fn = target.Type
	}
	s.p.m.DeadLetter(fn)
	s.p.cfg.logger.Warn("record sent to the dead-letter topic", "topic", src.Topic, "partition", src.Partition, "offset", src.Offset, "reason", reason)
}

// notePoison marks the consumed records whose outputs failed with an
// error that no retry can fix, so that the replay dead-letters them.
func (s *session) notePoison() {
	for _, f := range s.prod().failed() {
		src := f.out.src
		if src == nil || !unproducible(f.err) {
			continue
		}
		if s.poison == nil {
			s.poison = make(map[RecordRef]poisoned)
		}
		ref := src.ref()
		p := s.poison[ref]
		if f.out.Topic == string(s.p.topo.DLQTopic()) {
			p.dropValue = true
		}
		if p.reason == "" {
			p.reason = fmt.Sprintf("an output record of this record cannot be written to topic %s: %v", f.out.Topic, f.err)
		}
		s.poison[ref] = p
	}
}

// deadLetterAsides writes the table records that recovery left out to the
// dead-letter topic in t; a failed transaction writes them again in the
// next.
func (s *session) deadLetterAsides(t *txn, asides []aside) {
	for _, a := range asides {
		s.deadLetter(t, a.rec, a.reason, &a.target)
	}
}
