package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

// consumeOptions are the flags of `stateloop consume`.
type consumeOptions struct {
	brokers       []string
	topic         string
	count         int
	timeout       time.Duration
	fromBeginning bool
	format        string
}

// topicPollInterval is how often consume looks for a topic that does not
// exist yet.
const topicPollInterval = 250 * time.Millisecond

// errTimeout is the cause of the context of a consume that ran out of time.
var errTimeout = errors.New("timeout")

func newConsumeCommand() *cobra.Command {
	var o consumeOptions
	cmd := &cobra.Command{
		Use:   "consume --topic TOPIC [-n N] [--timeout D]",
		Short: "Print the committed records of a topic",
		Long: `Print the records of a Kafka topic, from all partitions, as they arrive.

It reads with isolation level read_committed, as every reader of a stateloop
application's output should: records of transactions that are still open are
not shown until they commit, and records of aborted transactions never.

When to stop:
  -n N           stop after N records (default 0: no limit)
  --timeout D    give up after D (default 0: never); with -n, fewer than N
                 records by then is an error (exit status 1), without -n it is
                 the normal end (read for D, then exit 0)
  Ctrl-C         stop at once (exit status 0)

If the topic does not exist yet, consume waits for it to be created (it never
creates it). --from-beginning=false skips the records that are already there.

Formats:
  text  one line "partition/offset key value" per record, then one line
        "  header key=value" per header; a null key or value is shown as
        (null), and a key with spaces or a key or value with control
        characters or bytes that are not UTF-8 is shown as a quoted Go string
  json  one JSON object per line with topic, partition, offset, timestamp,
        key, value and headers (a header map; of two headers with one key the
        last wins); a key or value that is not UTF-8 is given as key_base64 or
        value_base64 instead`,
		Example: `  # wait for the next greeting of the greeter, for at most 30 seconds
  stateloop consume --topic greetings -n 1 --timeout 30s

  # follow a topic until Ctrl-C, as JSON
  stateloop consume --topic greetings --format json

  # show what the greeter could not process, with the reasons in the headers
  stateloop consume --topic greeter-dlq --timeout 2s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return o.consume(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	brokersFlag(fs, &o.brokers)
	fs.StringVar(&o.topic, "topic", "", "topic to read (required)")
	fs.IntVarP(&o.count, "count", "n", 0, "stop after this many records; 0 reads until Ctrl-C or --timeout")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop after this long; with -n, fewer records by then is an error; 0 waits forever")
	fs.BoolVar(&o.fromBeginning, "from-beginning", true, "start at the first record of each partition; false starts at the end")
	fs.StringVar(&o.format, "format", "text", "output format: text or json")
	return cmd
}

func (o *consumeOptions) validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("stateloop consume: "+format, a...)) }
	if err := app.CheckBrokers("stateloop consume", o.brokers); err != nil {
		errs = append(errs, err)
	}
	if o.topic == "" {
		add("--topic: missing; name the topic to read, e.g. --topic greetings")
	}
	if o.count < 0 {
		add("-n %d: must not be negative", o.count)
	}
	if o.timeout < 0 {
		add("--timeout %v: must not be negative", o.timeout)
	}
	if o.format != "text" && o.format != "json" {
		add("--format %q: want text or json", o.format)
	}
	return errors.Join(errs...)
}

func (o *consumeOptions) consume(ctx context.Context, out, errOut io.Writer) error {
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.timeout, errTimeout)
		defer cancel()
	}
	client, err := connect(o.brokers, clientConfig())
	if err != nil {
		return fmt.Errorf("stateloop consume: %w", err)
	}
	defer client.Close()
	parts, err := o.waitForTopic(ctx, client, errOut)
	if err != nil || parts == nil {
		return err
	}
	// a topic created a moment ago answers "not the leader" for a while
	if err := kafkaread.WaitReady(ctx, client, o.topic); err != nil {
		return fmt.Errorf("stateloop consume: %w", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("stateloop consume: %w", err)
	}
	defer consumer.Close()

	start := sarama.OffsetOldest
	if !o.fromBeginning {
		start = sarama.OffsetNewest
	}
	msgs := make(chan *sarama.ConsumerMessage)
	warnings := make(chan error)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(o.topic, p, start)
		if err != nil {
			return fmt.Errorf("stateloop consume: read %s/%d: %w", o.topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			forward(pc, msgs, warnings, stop)
		}()
	}

	p := printer{out: out, json: o.format == "json"}
	for n := 0; o.count == 0 || n < o.count; {
		select {
		case m := <-msgs:
			if err := p.print(m); err != nil {
				return fmt.Errorf("stateloop consume: %w", err)
			}
			n++
		case err := <-warnings:
			fmt.Fprintf(errOut, "warning: %v\n", err)
		case <-ctx.Done():
			if context.Cause(ctx) == errTimeout && o.count > 0 {
				return fmt.Errorf("stateloop consume: timed out after %v with %d of %d records from topic %s", o.timeout, n, o.count, o.topic)
			}
			return nil
		}
	}
	return nil
}

// forward passes the records and errors of one partition on until stop is
// closed or the partition consumer ends.
func forward(pc sarama.PartitionConsumer, msgs chan<- *sarama.ConsumerMessage, warnings chan<- error, stop <-chan struct{}) {
	for {
		select {
		case m, ok := <-pc.Messages():
			if !ok {
				return
			}
			select {
			case msgs <- m:
			case <-stop:
				return
			}
		case err, ok := <-pc.Errors():
			if !ok {
				return
			}
			select {
			case warnings <- err:
			case <-stop:
				return
			}
		case <-stop:
			return
		}
	}
}

// waitForTopic returns the partitions of the topic once it exists, or nil
// if ctx ends first because of Ctrl-C.
func (o *consumeOptions) waitForTopic(ctx context.Context, client sarama.Client, errOut io.Writer) ([]int32, error) {
	waiting := false
	for {
		parts, ok, err := partitions(client, o.topic)
		if err != nil {
			return nil, fmt.Errorf("stateloop consume: %w", err)
		}
		if ok {
			return parts, nil
		}
		if !waiting {
			fmt.Fprintf(errOut, "topic %s does not exist yet; waiting for it to be created\n", o.topic)
			waiting = true
		}
		select {
		case <-ctx.Done():
			if context.Cause(ctx) == errTimeout {
				return nil, fmt.Errorf("stateloop consume: topic %s still does not exist after %v: check --topic and --brokers, "+
					"or start the application that writes it", o.topic, o.timeout)
			}
			return nil, nil
		case <-time.After(topicPollInterval):
		}
	}
}

// printer writes records in the text or JSON format.
type printer struct {
	out  io.Writer
	json bool
}

type jsonRecord struct {
	Topic       string            `json:"topic"`
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Timestamp   time.Time         `json:"timestamp,omitzero"`
	Key         *string           `json:"key"`
	KeyBase64   []byte            `json:"key_base64,omitempty"`
	Value       *string           `json:"value"`
	ValueBase64 []byte            `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
}

func (p printer) print(m *sarama.ConsumerMessage) error {
	if !p.json {
		var b strings.Builder
		fmt.Fprintf(&b, "%d/%d %s %s\n", m.Partition, m.Offset, showText(m.Key, true), showText(m.Value, false))
		for _, h := range m.Headers {
			fmt.Fprintf(&b, "  header %s=%s\n", showText(h.Key, true), showText(h.Value, false))
		}
		_, err := io.WriteString(p.out, b.String())
		return err
	}
	r := jsonRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp}
	r.Key, r.KeyBase64 = jsonBytes(m.Key)
	r.Value, r.ValueBase64 = jsonBytes(m.Value)
	if len(m.Headers) > 0 {
		r.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			r.Headers[string(h.Key)] = string(h.Value)
		}
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = p.out.Write(append(line, '\n'))
	return err
}

// jsonBytes returns b as a string if it is UTF-8, else as bytes for base64;
// nil for nil.
func jsonBytes(b []byte) (*string, []byte) {
	if b == nil {
		return nil, nil
	}
	if !utf8.Valid(b) {
		return nil, b
	}
	s := string(b)
	return &s, nil
}

// showText returns b for the text format: as it is when it is printable
// UTF-8, else quoted; a key is also quoted when it is empty or has spaces,
// so that the columns stay apart.
func showText(b []byte, key bool) string {
	if b == nil {
		return "(null)"
	}
	s := string(b)
	plain := utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
	if key && (s == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0) {
		plain = false
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}
