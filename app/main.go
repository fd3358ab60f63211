package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// Main runs the application that build makes as a command-line program
// with the flags of [Flags]; it is meant to be the whole main function of a
// user's program:
//
//	func main() { app.Main(myapp.Build) }
//
// It first calls [embedded.ServeIfChild], so the program can serve as its
// own embedded broker process, then runs [Command] through [Execute] and
// exits with its status. It does not return. opts set what the flags do
// not (see [WithProcessorOptions]).
func Main(build func() (topology.Topology, *functions.Registry), opts ...Option) {
	embedded.ServeIfChild()
	os.Exit(Execute(Command(filepath.Base(os.Args[0]), build, opts...)))
}

// Command returns a cobra command named use that runs the application that
// build makes with [Run] and opts, taking the flags of [Flags]. build is
// called once, when the command runs.
func Command(use string, build func() (topology.Topology, *functions.Registry), opts ...Option) *cobra.Command {
	var f Flags
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the stateloop application " + use,
		Long: `Run the stateloop application ` + use + ` until Ctrl-C (SIGINT) or SIGTERM.

Without --brokers (or ` + EnvBrokers + `) it starts an embedded Kafka broker on
--listen that keeps its data in <data-dir>/broker, so nothing else needs to be
installed; other programs (stateloop send and consume, kcat, more instances of
this application) can connect to it with --brokers. With --brokers it joins
the application's consumer group on that Kafka cluster: start the program
several times, each with its own --data-dir, to spread the partitions over
several instances. A running instance locks its --data-dir: a second one
started on the same directory fails at once.

` + TracingHelp + `

On Ctrl-C the application commits its last transaction and leaves the
consumer group before the embedded broker stops; press Ctrl-C again to kill
it at once.`,
		Example: `  # run with an embedded broker on 127.0.0.1:9092, data in ./stateloop-data
  ` + use + `

  # run against an existing Kafka cluster
  ` + use + ` --brokers kafka-1:9092,kafka-2:9092 --data-dir /var/lib/` + use,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), f, build, cmd.OutOrStdout(), opts...)
		},
	}
	f.Register(cmd.Flags())
	return cmd
}

// Execute runs cmd with the program's arguments and a context that SIGINT
// and SIGTERM cancel; once cancelled, a second signal kills the process.
// It prints an error as "error: ..." on cmd's error output, with a hint to
// --help after a usage error, and returns the exit status: 0, or 1 after an
// error.
func Execute(cmd *cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default action: the next signal kills
	}()
	return execute(ctx, cmd)
}

func execute(ctx context.Context, cmd *cobra.Command) int {
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())
	})
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "error: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 1
	}
	return 0
}
