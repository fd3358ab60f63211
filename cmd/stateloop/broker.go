package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/topology"
)

func newBrokerCommand() *cobra.Command {
	var f app.Flags
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run only the embedded Kafka broker",
		Long: `Run the embedded Kafka broker (a single-node kfake broker) until Ctrl-C, and
nothing else. It is the broker that stateloop run starts when it gets no
--brokers; run it on its own to start several application instances against
one broker, or to use it with any Kafka client such as kcat.

The broker listens on a loopback address only (it has no authentication),
creates topics on first use with --partitions partitions, supports
transactions and read_committed consumers, and keeps its data in
<data-dir>/broker (the same place as stateloop run, so the two can take turns
on one data directory). --data-dir "" keeps everything in memory. Kafka's own
tools work with it (kafka-topics, kafka-consumer-groups, kafka-console-consumer,
kafka-transactions and more; docs/kafka.md lists them).`,
		Example: `  # terminal 1: the broker
  stateloop broker

  # terminals 2 and 3: two instances of the greeter share the partitions
  stateloop run greeter --brokers 127.0.0.1:9092 --data-dir ./instance-1
  stateloop run greeter --brokers 127.0.0.1:9092 --data-dir ./instance-2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBroker(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.Listen, "listen", app.DefaultListen, "address to listen on (loopback only); port 0 picks a free port")
	fs.StringVar(&f.DataDir, "data-dir", app.DefaultDataDir, `the broker keeps its data in <data-dir>/broker; "" keeps it in memory`)
	fs.Int32Var(&f.Partitions, "partitions", topology.DefaultPartitions, "partitions of topics the broker creates on first use")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", "text", "log format on stderr: text or json")
	return cmd
}

// runBroker runs the embedded broker until ctx is cancelled.
func runBroker(ctx context.Context, f app.Flags, out io.Writer) error {
	if err := f.Validate(); err != nil {
		return err
	}
	dir, where := "", "in memory"
	if f.DataDir != "" {
		dir = filepath.Join(f.DataDir, "broker")
		where = "in " + dir
	}
	b, err := embedded.Start(ctx, embedded.Config{
		Listen:     f.Listen,
		DataDir:    dir,
		Partitions: f.Partitions,
		Logger:     f.Logger(os.Stderr),
	})
	if err != nil {
		return fmt.Errorf("stateloop broker: %w", err)
	}
	fmt.Fprintf(out, "Kafka broker listening on %s (data %s); connect with --brokers %s\npress Ctrl-C to stop\n", b.Addr(), where, b.Addr())
	select {
	case <-b.Done():
		if err := b.Err(); err != nil {
			return fmt.Errorf("stateloop broker: %w", err)
		}
		return errors.New("stateloop broker: the broker stopped by itself")
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "stopping the broker")
	if err := b.Close(); err != nil {
		return fmt.Errorf("stateloop broker: %w", err)
	}
	fmt.Fprintln(out, "broker stopped")
	return nil
}
