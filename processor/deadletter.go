package processor

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
)

// poisoned is a consumed record whose output can never be produced.
type poisoned struct {
	reason string
	// dropValue: even the dead letter with the record's value failed
	dropValue bool
}

// deadLetter writes the consumed record to the dead-letter topic with the
// reason in its headers, inside the open transaction.
func (w *worker) deadLetter(m *record, reason string, target *functions.Address) {
	w.deadLetterValue(m, reason, target, true)
}

func (w *worker) deadLetterValue(m *record, reason string, target *functions.Address, withValue bool) {
	headers := []sarama.RecordHeader{
		{Key: []byte("stateloop.error"), Value: []byte(reason)},
		{Key: []byte("stateloop.source.topic"), Value: []byte(m.Topic)},
		{Key: []byte("stateloop.source.partition"), Value: []byte(itoa(int64(m.Partition)))},
		{Key: []byte("stateloop.source.offset"), Value: []byte(itoa(m.Offset))},
	}
	if target != nil {
		headers = append(headers,
			sarama.RecordHeader{Key: []byte("stateloop.function.type"), Value: []byte(target.Type)},
			sarama.RecordHeader{Key: []byte("stateloop.function.id"), Value: []byte(target.ID)})
	}
	pm := &sarama.ProducerMessage{Topic: string(w.p.topo.DLQTopic()), Headers: headers}
	if withValue {
		pm.Value = sarama.ByteEncoder(m.Value)
	} else {
		pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte("stateloop.value.dropped"), Value: []byte("the record's value could not be written to the dead-letter topic")})
	}
	// the dead-letter topic may have been created with another partition
	// count than the application's internal topics
	n, err := w.partitions(string(w.p.topo.DLQTopic()))
	if err != nil {
		w.setFatal(fmt.Errorf("processor: dead-letter topic: %w", err))
		return
	}
	if m.Key != nil {
		pm.Key = sarama.ByteEncoder(m.Key)
		pm.Partition = partitionFor(string(m.Key), n)
	} else {
		pm.Partition = m.Partition % n
	}
	w.send(pm)
	w.p.count(func(s *Stats) { s.DeadLetters++ })
	fn := ""
	if target != nil {
		fn = string(target.Type)
	}
	w.p.m.deadLetters.WithLabelValues(fn).Inc()
	w.p.cfg.logger.Warn("record sent to the dead-letter topic", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "reason", reason)
}

// notePoison marks the consumed records whose output records failed with
// an error that no retry can fix, so that the replay dead-letters them.
func (w *worker) notePoison() {
	for _, pe := range w.h.producer.failed() {
		src := w.sources[pe.Msg]
		if src == nil || !unproducible(pe.Err) {
			continue
		}
		if w.poison == nil {
			w.poison = make(map[RecordRef]poisoned)
		}
		ref := RecordRef{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset}
		p := w.poison[ref]
		if pe.Msg.Topic == string(w.p.topo.DLQTopic()) {
			p.dropValue = true
		}
		if p.reason == "" {
			p.reason = fmt.Sprintf("an output record of this record cannot be written to topic %s: %v", pe.Msg.Topic, pe.Err)
		}
		w.poison[ref] = p
	}
}

// unproducible reports produce errors that fail every retry.
func unproducible(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) || errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrInvalidPartition) ||
		errors.Is(err, sarama.ErrInvalidMessage) || errors.Is(err, sarama.ErrMessageTooLarge) || errors.Is(err, sarama.ErrInvalidRecord)
}
