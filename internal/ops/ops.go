// Package ops is the operator's client of a running stateloop
// application, over Kafka: it lists and replays dead letters, edits state,
// lists and cancels delayed messages, and describes the application. The
// CLI (`stateloop dlq|state|timers|describe`) and the HTTP API use it.
//
// # Through the runtime
//
// Every change goes through the runtime as a control record (see
// internal/wire and processor/control.go): a record on the loop topic, in
// the partition of the address it is for, that the runtime applies at the
// address in order with its messages, in a transaction, and answers
// through the replies topic. A Client therefore never writes a table, the
// timers topic or the dead-letter topic itself, so it cannot race the
// runtime, and exactly-once holds: a replay carries an idempotency key made
// from the dead letter's partition and offset, so writing it again (a
// command run again after a crash) delivers it once.
//
// # Reading
//
// Reads (dead letters, delayed messages) read the topics read_committed up
// to their last stable offset, and show what is committed: a change made a
// moment ago by a transaction still open is not there yet.
//
// # Concurrency
//
// A Client may be used by several goroutines at once.
package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// ErrNoAnswer is wrapped by the error of a control record the runtime
// did not answer in time: it was written and will be applied when an
// instance of the application processes its partition.
var ErrNoAnswer = errors.New("no answer from the application")

// ErrNoApplication is wrapped by Dial's error when the application's loop
// topic does not exist.
var ErrNoApplication = errors.New("no such application")

// ErrBadValue is wrapped by the errors of values that cannot be sent as
// given: a value that does not parse as its type, one whose type is not
// given and not known.
var ErrBadValue = errors.New("bad value")

// RefusedError is the error of a control record the runtime refused: it
// is in the dead-letter topic with Reason.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "ops: refused by the application: " + e.Reason }

// DefaultWait is how long a change waits for the runtime's answer.
const DefaultWait = 30 * time.Second

// Client is an operator's connection to one application.
type Client struct {
	topo     topology.Topology
	reader   sarama.Client // reads and admin requests
	producer sarama.SyncProducer
	instance string
	owned    []func() error // closed by Close, in order

	mu      sync.Mutex
	waiters map[string]chan wire.ControlResult
	seq     uint64
	stop    context.CancelFunc
	done    chan struct{}
}

// Kafka is what New uses: a client for reads (topics, offsets, groups)
// and a producer for control records; the caller keeps and closes them.
// Reads wait behind nothing on Reader's connections, so it should not be
// a client that long-polls (see httpapi's console client).
type Kafka struct {
	Reader   sarama.Client
	Producer sarama.SyncProducer
}

// New returns a Client of the application topo (its App and Partitions)
// on connections the caller owns. instance names the Client in the callers
// of its control records: the runtime answers them in the partition of
// instance of the replies topic, where the caller reads them and hands
// them to Deliver. New makes no requests.
func New(k Kafka, topo topology.Topology, instance string) *Client {
	return &Client{topo: topo, reader: k.Reader, producer: k.Producer, instance: instance, waiters: make(map[string]chan wire.ControlResult)}
}

// ClientConfig is the sarama configuration of a command-line client
// (Dial's, and the CLI's): reads read_committed, an idempotent producer
// that writes to the partition each record names (ManualPartitioner), and
// no topic ever created by a metadata request, so that a command run
// before the application created its topics cannot create them with the
// broker's defaults.
func ClientConfig(clientID string) *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = clientID
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Metadata.Retry.Max = 2
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	sc.Net.DialTimeout = 5 * time.Second
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Idempotent = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Net.MaxOpenRequests = 1
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	return sc
}

// Dial connects to Kafka, finds the application app (its loop topic must
// exist: the application creates it at its first start; else the error
// wraps ErrNoApplication and names the applications there are), and reads
// the answers to its control records from then on. Close it when done.
func Dial(ctx context.Context, brokers []string, app string) (*Client, error) {
	reader, err := sarama.NewClient(brokers, ClientConfig("stateloop-ops"))
	if err != nil {
		return nil, fmt.Errorf("ops: connect to Kafka at %s: %w", strings.Join(brokers, ","), err)
	}
	topo, err := FindApplication(reader, app)
	if err != nil {
		reader.Close()
		return nil, err
	}
	// a second client: the reply reader's fetches long-poll
	writer, err := sarama.NewClient(brokers, ClientConfig("stateloop-ops"))
	if err != nil {
		reader.Close()
		return nil, fmt.Errorf("ops: connect to Kafka at %s: %w", strings.Join(brokers, ","), err)
	}
	producer, err := sarama.NewSyncProducerFromClient(writer)
	if err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("ops: producer: %w", err)
	}
	c := New(Kafka{Reader: reader, Producer: producer}, topo, "ops-"+randomID())
	c.owned = []func() error{producer.Close, writer.Close, reader.Close}
	if err := c.readReplies(ctx, writer); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// FindApplication returns the topology of the application app as Kafka
// knows it: its name and the partition count of its loop topic, which
// must exist (else an error wrapping ErrNoApplication, naming the
// applications there are).
func FindApplication(client sarama.Client, app string) (topology.Topology, error) {
	topo := topology.Topology{App: app}
	counts, err := kafkaread.PartitionCounts(client, nil)
	if err != nil {
		return topo, fmt.Errorf("ops: list the topics: %w", err)
	}
	n, ok := counts[string(topo.LoopTopic())]
	if !ok {
		var apps []string
		for t := range counts {
			if name, ok := strings.CutSuffix(t, "-loop"); ok && name != "" {
				if _, ok := counts[string(topology.Topology{App: name}.TimersTopic())]; ok {
					apps = append(apps, name)
				}
			}
		}
		there := "there are none"
		if len(apps) > 0 {
			there = "applications there: " + strings.Join(apps, ", ")
		}
		return topo, fmt.Errorf("%w %s: there is no topic %s (%s); check the application's name and the brokers, or start it once (it creates its topics)",
			ErrNoApplication, app, topo.LoopTopic(), there)
	}
	topo.Partitions = n
	return topo, nil
}

// Topology returns the application's name and partition count.
func (c *Client) Topology() topology.Topology { return c.topo }

// Close stops reading answers and closes what Dial opened.
func (c *Client) Close() error {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	var errs []error
	for _, f := range c.owned {
		errs = append(errs, f())
	}
	return errors.Join(errs...)
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readReplies reads the answers to this Client's control records from its
// partition of the replies topic, from its end now on, until Close.
func (c *Client) readReplies(ctx context.Context, client sarama.Client) error {
	topic := string(c.topo.RepliesTopic())
	part := processor.PartitionFor(c.instance, c.topo.PartitionCount())
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("ops: consumer: %w", err)
	}
	pc, err := consumer.ConsumePartition(topic, part, sarama.OffsetNewest)
	if err != nil {
		consumer.Close()
		return fmt.Errorf("ops: read the answers of the application from %s/%d (the application creates the topic at start-up): %w", topic, part, err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	c.stop, c.done = cancel, make(chan struct{})
	done := c.done
	c.mu.Unlock()
	go func() {
		defer close(done)
		defer consumer.Close()
		defer pc.Close()
		for {
			select {
			case <-rctx.Done():
				return
			case <-pc.Errors():
			case m := <-pc.Messages():
				if env, err := wire.DecodeEnvelope(m.Value); err == nil {
					c.Deliver(env)
				}
			}
		}
	}()
	return nil
}

// Deliver hands the Client a record of the replies topic; it reports
// whether it was the answer to one of the Client's control records that
// is being waited for. A Client made with New gets its answers this way.
func (c *Client) Deliver(env wire.Envelope) bool {
	if env.Argument.TypeName() != wire.ControlResultType || env.Target.Type != topology.HTTPCaller {
		return false
	}
	res, err := wire.DecodeControlResult(env.Argument.Bytes())
	if err != nil {
		res = wire.ControlResult{Error: fmt.Sprintf("the application's answer does not decode: %v", err)}
	}
	c.mu.Lock()
	w := c.waiters[env.Target.ID]
	delete(c.waiters, env.Target.ID)
	c.mu.Unlock()
	if w == nil {
		return false
	}
	w <- res
	return true
}

// Op is a control record to send: a request for an address. Key is its
// idempotency key; empty for a new random one (the request is applied
// once even if its record is written twice by the producer's retries).
type Op struct {
	To      functions.Address
	Control *wire.Control
	Key     string
}

// Outcome is what became of an Op.
type Outcome struct {
	// Partition and Offset are where its record was written to the loop
	// topic; Offset is -1 if it was not.
	Partition int32
	Offset    int64
	// Result is the runtime's answer; Answered is false if none came in
	// time (Err then wraps ErrNoAnswer) or the record was not written.
	Result   wire.ControlResult
	Answered bool
	Err      error
}

// Do writes the control records of ops to the loop topic, each in the
// partition of its address, and waits up to wait for the runtime's
// answers (wait 0: does not wait). The outcomes are in the order of ops.
// A runtime that is down answers when it is back: Do's answer is then
// ErrNoAnswer, though the records will be applied.
func (c *Client) Do(ctx context.Context, ops []Op, wait time.Duration) []Outcome {
	out := make([]Outcome, len(ops))
	waits := make([]chan wire.ControlResult, len(ops))
	var msgs []*sarama.ProducerMessage
	var idx []int
	for i, op := range ops {
		out[i].Offset = -1
		if err := op.To.Validate(); err != nil {
			out[i].Err = fmt.Errorf("ops: %w", err)
			continue
		}
		c.mu.Lock()
		c.seq++
		callerID := fmt.Sprintf("%s/%d", c.instance, c.seq)
		if wait > 0 {
			waits[i] = make(chan wire.ControlResult, 1)
			c.waiters[callerID] = waits[i]
		}
		c.mu.Unlock()
		key := op.Key
		if key == "" {
			key = "ops/" + randomID()
		}
		caller := functions.Address{Type: topology.HTTPCaller, ID: callerID}
		env := wire.Envelope{Target: op.To, Caller: &caller, Control: op.Control, IdempotencyKey: key}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(c.topo.LoopTopic()), Partition: processor.PartitionFor(op.To.ID, c.topo.PartitionCount()),
			Key: sarama.StringEncoder(op.To.ID), Value: sarama.ByteEncoder(wire.AppendEnvelope(nil, env)), Metadata: callerID})
		idx = append(idx, i)
	}
	defer func() {
		c.mu.Lock()
		for _, m := range msgs {
			delete(c.waiters, m.Metadata.(string))
		}
		c.mu.Unlock()
	}()
	if len(msgs) > 0 {
		err := c.producer.SendMessages(msgs)
		var perrs sarama.ProducerErrors
		errors.As(err, &perrs)
		failed := make(map[*sarama.ProducerMessage]error)
		for _, pe := range perrs {
			failed[pe.Msg] = pe.Err
		}
		for j, m := range msgs {
			i := idx[j]
			if e, ok := failed[m]; ok || (err != nil && len(perrs) == 0) {
				if !ok {
					e = err
				}
				out[i].Err = fmt.Errorf("ops: write the %s for %s to %s: %w", ops[i].Control.Kind(), ops[i].To, c.topo.LoopTopic(), e)
				waits[i] = nil
				continue
			}
			out[i].Partition, out[i].Offset = m.Partition, m.Offset
		}
	}
	if wait <= 0 {
		return out
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for i := range ops {
		if waits[i] == nil {
			continue
		}
		select {
		case res := <-waits[i]:
			out[i].Result, out[i].Answered = res, true
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		// time is up: take what has come, and give up on the rest
		for j := i; j < len(ops); j++ {
			if waits[j] == nil {
				continue
			}
			select {
			case res := <-waits[j]:
				out[j].Result, out[j].Answered = res, true
			default:
				out[j].Err = fmt.Errorf("ops: %w within %v for the %s for %s (written to %s, partition %d, offset %d): it is applied when an instance of %s processes that partition; is the application running?",
					ErrNoAnswer, wait, ops[j].Control.Kind(), ops[j].To, c.topo.LoopTopic(), out[j].Partition, out[j].Offset, c.topo.App)
			}
		}
		break
	}
	return out
}

// do sends one control record and waits for its answer; an answer that
// reports an error is returned as an error.
func (c *Client) do(ctx context.Context, op Op, wait time.Duration) (wire.ControlResult, error) {
	o := c.Do(ctx, []Op{op}, wait)[0]
	if o.Err != nil {
		return wire.ControlResult{}, o.Err
	}
	if o.Result.Error != "" {
		return o.Result, &RefusedError{Reason: o.Result.Error}
	}
	return o.Result, nil
}
