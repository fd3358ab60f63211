package processor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// errCommittedWithFailures reports a transaction that the broker committed
// although some of its records failed; sarama should never let that happen.
var errCommittedWithFailures = errors.New("transaction committed with failed records")

// txnProducer wraps one transactional sarama producer. It counts the
// records of the open transaction and collects their acknowledgements, so
// that after a commit the offsets of the changelog records are known.
type txnProducer struct {
	ap sarama.AsyncProducer

	wg sync.WaitGroup // one per record sent in the open transaction
	// queue decouples the worker from sarama's unbuffered Input channel:
	// a feeder goroutine hands records over in order, so the worker goes
	// on invoking while sarama's pipeline takes the previous records
	queue  chan feed
	mu     sync.Mutex
	errs   []error
	acked  []*sarama.ProducerMessage
	done   chan struct{}
	closed bool
}

func newTxnProducer(brokers []string, cfg *sarama.Config) (*txnProducer, error) {
	ap, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("transactional producer: %w", err)
	}
	t := &txnProducer{ap: ap, done: make(chan struct{}), queue: make(chan feed, 4096)}
	go func() {
		for f := range t.queue {
			if f.flushed != nil {
				close(f.flushed)
				continue
			}
			ap.Input() <- f.msg
		}
	}()
	var drain sync.WaitGroup
	drain.Add(2)
	go func() {
		defer drain.Done()
		for m := range ap.Successes() {
			t.mu.Lock()
			t.acked = append(t.acked, m)
			t.mu.Unlock()
			t.wg.Done()
		}
	}()
	go func() {
		defer drain.Done()
		for e := range ap.Errors() {
			t.mu.Lock()
			t.errs = append(t.errs, e)
			t.mu.Unlock()
			t.wg.Done()
		}
	}()
	go func() { drain.Wait(); close(t.done) }()
	return t, nil
}

func (t *txnProducer) begin() error {
	t.mu.Lock()
	t.errs, t.acked = nil, nil
	t.mu.Unlock()
	return t.ap.BeginTxn()
}

// feed is a record for the feeder, or a flush marker.
type feed struct {
	msg     *sarama.ProducerMessage
	flushed chan struct{}
}

func (t *txnProducer) send(m *sarama.ProducerMessage) {
	t.wg.Add(1)
	t.queue <- feed{msg: m}
}

// handedOver waits until the feeder has given every queued record to
// sarama, so that a commit or abort covers them.
func (t *txnProducer) handedOver() {
	ch := make(chan struct{})
	t.queue <- feed{flushed: ch}
	<-ch
}

// commit adds the consumed offsets and commits. It returns the acknowledged
// records of the transaction.
func (t *txnProducer) commit(offsets map[string][]*sarama.PartitionOffsetMetadata, group *sarama.ConsumerGroupMetadata) ([]*sarama.ProducerMessage, error) {
	t.handedOver()
	if len(offsets) > 0 {
		if err := t.ap.AddOffsetsToTxnWithGroupMetadata(offsets, group); err != nil {
			t.wg.Wait()
			if rerr := t.recordErr(); rerr != nil {
				return nil, fmt.Errorf("a record failed: %w (then: add offsets to transaction: %v)", rerr, err)
			}
			return nil, fmt.Errorf("add offsets to transaction: %w", err)
		}
	}
	err := t.ap.CommitTxn()
	t.wg.Wait()
	if err != nil {
		if rerr := t.recordErr(); rerr != nil {
			return nil, fmt.Errorf("a record failed: %w (then: commit transaction: %v)", rerr, err)
		}
		return nil, fmt.Errorf("commit transaction: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errs) > 0 {
		return nil, fmt.Errorf("%w: %d records failed, first: %w", errCommittedWithFailures, len(t.errs), t.errs[0])
	}
	return t.acked, nil
}

// abort aborts the open transaction, if the producer can.
func (t *txnProducer) abort() error {
	t.handedOver()
	if t.ap.TxnStatus()&sarama.ProducerTxnFlagInTransaction == 0 &&
		t.ap.TxnStatus()&sarama.ProducerTxnFlagAbortableError == 0 {
		t.wg.Wait()
		return nil
	}
	err := t.ap.AbortTxn()
	t.wg.Wait()
	if err != nil {
		return fmt.Errorf("abort transaction: %w", err)
	}
	return nil
}

// fatal reports whether the producer can no longer be used (it was fenced
// or hit a fatal error) and must be replaced.
func (t *txnProducer) fatal() bool {
	return t.ap.TxnStatus()&sarama.ProducerTxnFlagFatalError != 0
}

// failed returns the records of the open or last transaction that failed.
func (t *txnProducer) failed() []*sarama.ProducerError {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*sarama.ProducerError
	for _, e := range t.errs {
		var pe *sarama.ProducerError
		if errors.As(e, &pe) {
			out = append(out, pe)
		}
	}
	return out
}

// recordErr returns the first failed record's error, or nil.
func (t *txnProducer) recordErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errs) == 0 {
		return nil
	}
	return t.errs[0]
}

func (t *txnProducer) close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	t.handedOver()
	close(t.queue)
	err := t.ap.Close()
	<-t.done
	if err != nil && !errors.Is(err, sarama.ErrProducerFenced) {
		return err
	}
	return nil
}
