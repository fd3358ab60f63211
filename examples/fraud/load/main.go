// Command load feeds the fraud-detection example: it writes transactions
// to the topic "transactions" at a steady rate and, a little later, a
// confirmed-fraud report to "confirmed-fraud" for each fraudulent one. The
// stream is deterministic for a seed. See ../README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

func main() {
	os.Exit(app.Execute(command()))
}

// options are the flags of the command.
type options struct {
	brokers     []string
	rate        float64
	count       int
	reportDelay time.Duration
	gen         generatorConfig
}

func command() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Write transactions and confirmed-fraud reports for the fraud example",
		Long: `Write transactions (JSON, keyed by transaction id) to the topic transactions
at --rate per second and, --report-delay after each fraudulent one, a
confirmed-fraud report (keyed by account) to the topic confirmed-fraud.

Accounts are acct-0000 to acct-<accounts-1>, merchants merchant-000 to
merchant-<merchants-1>. One account in a hundred is in the hands of fraudsters
at any time; a fraction --fraud-rate of the transactions are theirs: large
amounts at risky merchants, each later confirmed as fraud. After five frauds
the card is blocked and the fraudsters move on to another account.

The same --seed writes the same transactions with the same ids: the
application recognizes them as duplicates (for 24 hours) and does not score
them again, but it counts their fraud reports again. Use a new seed for new
transactions.`,
		Example: `  # 200 transactions per second until Ctrl-C, to the embedded broker
  load --rate 200 --accounts 1000 --fraud-rate 0.01

  # exactly 10,000 transactions, then the last reports, then exit
  load --count 10000 --seed 7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return run(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	defaultBrokers := app.SplitBrokers(os.Getenv(app.EnvBrokers))
	if len(defaultBrokers) == 0 {
		defaultBrokers = []string{app.DefaultListen}
	}
	fs.StringSliceVar(&o.brokers, "brokers", defaultBrokers, "Kafka brokers, comma-separated host:port (env "+app.EnvBrokers+")")
	fs.Float64Var(&o.rate, "rate", 200, "transactions per second")
	fs.IntVar(&o.count, "count", 0, "stop after this many transactions (and their reports); 0 runs until Ctrl-C")
	fs.DurationVar(&o.reportDelay, "report-delay", 2*time.Second, "how long after a fraudulent transaction its confirmed-fraud report is written")
	fs.IntVar(&o.gen.Accounts, "accounts", 1000, "number of accounts")
	fs.IntVar(&o.gen.Merchants, "merchants", 200, "number of merchants")
	fs.Float64Var(&o.gen.FraudRate, "fraud-rate", 0.01, "fraction of transactions that are fraud, between 0 and 1")
	fs.Uint64Var(&o.gen.Seed, "seed", 1, "seed of the random stream; the same seed writes the same transactions")
	return cmd
}

func (o options) validate() error {
	var errs []error
	if len(o.brokers) == 0 {
		errs = append(errs, errors.New("load: --brokers: name at least one broker"))
	}
	if !(o.rate > 0) || math.IsInf(o.rate, 0) {
		errs = append(errs, fmt.Errorf("load: --rate %v: must be positive", o.rate))
	}
	if o.count < 0 {
		errs = append(errs, fmt.Errorf("load: --count %d: must not be negative", o.count))
	}
	if o.reportDelay < 0 {
		errs = append(errs, fmt.Errorf("load: --report-delay %v: must not be negative", o.reportDelay))
	}
	if o.gen.Accounts < 1 {
		errs = append(errs, fmt.Errorf("load: --accounts %d: must be at least 1", o.gen.Accounts))
	}
	if o.gen.Merchants < 1 {
		errs = append(errs, fmt.Errorf("load: --merchants %d: must be at least 1", o.gen.Merchants))
	}
	if !(o.gen.FraudRate >= 0 && o.gen.FraudRate <= 1) {
		errs = append(errs, fmt.Errorf("load: --fraud-rate %v: want a fraction between 0 and 1", o.gen.FraudRate))
	}
	return errors.Join(errs...)
}

// tick is how often run writes what is due.
const tick = 10 * time.Millisecond

// report is a confirmed-fraud report waiting for its time.
type report struct {
	due    time.Time
	record *sarama.ProducerMessage
}

// counts are what run has written.
type counts struct {
	transactions, frauds, reports int
}

// run writes until ctx is done or, with a count, until every transaction
// and report is written. It prints a progress line every second.
func run(ctx context.Context, o options, out io.Writer) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	// the fraud application creates the topics, with its partition count
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(o.brokers, sc)
	if err != nil {
		return fmt.Errorf("load: connect to Kafka at %v: %w", o.brokers, err)
	}
	defer client.Close()
	if err := waitForTopics(ctx, client, out); err != nil || ctx.Err() != nil {
		return err
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer producer.Close()

	gen := newGenerator(o.gen)
	var c, shown counts
	var waiting []report
	start := time.Now()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	lastShown := start
	show := func(now time.Time) {
		fmt.Fprintf(out, "%6.1fs: %d transactions (%d fraudulent), %d confirmed-fraud reports; %.0f transactions/s\n",
			now.Sub(start).Seconds(), c.transactions, c.frauds, c.reports, float64(c.transactions-shown.transactions)/max(now.Sub(lastShown).Seconds(), 0.001))
		shown, lastShown = c, now
	}
	fmt.Fprintf(out, "writing transactions to %s and confirmed-fraud reports to %s at %s (seed %d)\n",
		fraud.TransactionsTopic, fraud.ConfirmedFraudTopic, o.brokers[0], o.gen.Seed)
	for {
		now := time.Now()
		var batch []*sarama.ProducerMessage
		target := int(o.rate * now.Sub(start).Seconds())
		if o.count > 0 {
			target = min(target, o.count)
		}
		for c.transactions+len(batch) < target {
			e := gen.next(now)
			v, err := json.Marshal(e.Transaction)
			if err != nil {
				return fmt.Errorf("load: %w", err)
			}
			batch = append(batch, &sarama.ProducerMessage{Topic: string(fraud.TransactionsTopic),
				Key: sarama.StringEncoder(e.Transaction.ID), Value: sarama.ByteEncoder(v)})
			if e.Fraud {
				c.frauds++
				r, err := json.Marshal(fraud.Report{Account: e.Transaction.Account, Transaction: e.Transaction.ID, Time: now.Add(o.reportDelay)})
				if err != nil {
					return fmt.Errorf("load: %w", err)
				}
				waiting = append(waiting, report{due: now.Add(o.reportDelay), record: &sarama.ProducerMessage{
					Topic: string(fraud.ConfirmedFraudTopic), Key: sarama.StringEncoder(e.Transaction.Account), Value: sarama.ByteEncoder(r)}})
			}
		}
		sentTx := len(batch)
		i := 0
		for ; i < len(waiting) && !waiting[i].due.After(now); i++ {
			batch = append(batch, waiting[i].record)
		}
		waiting = waiting[i:]
		if len(batch) > 0 {
			if err := producer.SendMessages(batch); err != nil {
				return fmt.Errorf("load: write to Kafka: %w", err)
			}
			c.transactions += sentTx
			c.reports += i
		}
		if now.Sub(lastShown) >= time.Second {
			show(now)
		}
		if o.count > 0 && c.transactions == o.count && len(waiting) == 0 {
			show(time.Now())
			return nil
		}
		select {
		case <-ctx.Done():
			show(time.Now())
			if len(waiting) > 0 {
				fmt.Fprintf(out, "stopped: %d confirmed-fraud reports not written\n", len(waiting))
			}
			return nil
		case <-ticker.C:
		}
	}
}

// topicWait bounds the wait for the application's topics.
const topicWait = 2 * time.Minute

// waitForTopics waits until the topics the load writes exist and are
// ready, saying so when they do not exist yet: the fraud application
// creates them at its first start.
func waitForTopics(ctx context.Context, client sarama.Client, out io.Writer) error {
	topics := []string{string(fraud.TransactionsTopic), string(fraud.ConfirmedFraudTopic)}
	known, err := client.Topics()
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if slices.ContainsFunc(topics, func(t string) bool { return !slices.Contains(known, t) }) {
		fmt.Fprintf(out, "waiting for the topics %s: start the fraud application, which creates them\n", strings.Join(topics, ", "))
	}
	wctx, cancel := context.WithTimeout(ctx, topicWait)
	defer cancel()
	if err := kafkaread.WaitReady(wctx, client, topics...); err != nil && ctx.Err() == nil {
		return fmt.Errorf("load: %w; start the fraud application first: it creates them", err)
	}
	return nil
}
