package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/internal/smoke"
)

func newSmokeCommand() *cobra.Command {
	cfg := smoke.DefaultConfig()
	var logLevel string
	delayed := true
	cmd := &cobra.Command{
		Use:   "stateloop-smoke",
		Short: "Check exactly-once end to end while worker processes are killed (StateFun's smoke test)",
		Long: `Run stateloop's version of Apache Flink StateFun's smoke end-to-end test and
report PASS or FAIL.

The application is one function type, statefun.smoke.e2e/command-interpreter-fn,
with ids 0 to --ids minus 1 and a count in its state. The driver writes --messages
random source commands (seeded by --seed) to the topic <app>-commands, --rate
per second, with an idempotent producer. A command is a tree of up to --depth
levels: increment the count, send commands to another id, send them as a
delayed message (a random delay up to --max-delay), send a delayed message and
cancel it at once, write a record to the discard egress. For every command the
broker acknowledges, the driver adds up the increments each id must see.
--delayed=false leaves delayed messages and cancellations out.

--workers worker processes (this program, re-executed) run the application
together. While the commands are produced, a random worker is killed with
SIGKILL --kills times, at random moments, and restarted on its local state. A
kill waits until every worker is ready again after the previous one; with
--kill-anytime it does not, so kills also hit workers that are recovering or
joining the group.

Then the driver sends Verify{expected count} to every id every 2 seconds; each
id writes its expected and actual count to <app>-verification, which the driver
reads with read_committed. The run

  passes   when every id has reported exactly its expected count;
  fails    at once when an id reports more: an effect happened twice;
  fails    at --timeout with the ids that did not get there: effects were lost.

A delayed message delivered twice could still raise a count after every id has
reported its own: with delayed messages the driver then waits as long as the
longest chain of delayed messages in the commands can take (each up to
--max-delay, plus two commit intervals per message) and passes only when every
id reports its count once more. Nor does it report a loss before that wait has
passed since the last command, even after --timeout.

Progress lines go to stderr, the summary to stdout; the exit code is 1 on a
failure. The summary prints the seed: --seed runs the same commands again.

Without --brokers an embedded kfake broker is started in a child process on a
free loopback port. With --brokers the run creates the topics <app>-* on that
cluster and leaves them; every run needs a new --app (the default is
smoke-<random>). The default --session-timeout is 2s on the embedded broker and
6s with --brokers (Kafka's default group.min.session.timeout.ms); a killed
worker's partitions wait that long for a new owner. docs/smoke.md says more.`,
		Example: `  # the default run on an embedded broker: 20,000 commands, 128 ids,
  # 2 workers, 4 kills
  stateloop-smoke

  # a short run
  stateloop-smoke --messages 3000 --ids 32 --kills 2

  # on Apache Kafka (scripts/kafka.sh start prints KAFKA_BROKERS=...), with
  # kills that also hit workers in the middle of a rebalance
  stateloop-smoke --brokers "$KAFKA_BROKERS" --messages 5000 --kill-anytime

  # no delayed messages or cancellations; shorter delays
  stateloop-smoke --delayed=false
  stateloop-smoke --max-delay 200ms

  # run the commands of a failed run again
  stateloop-smoke --seed 8026117397052231`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfg.Brokers) > 0 {
				if err := app.CheckBrokers("stateloop-smoke", cfg.Brokers); err != nil {
					return err
				}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("stateloop-smoke: --log-level %q: want debug, info, warn or error", logLevel)
			}
			cfg.WorkerLogLevel = level
			cfg.WorkerLog = cmd.ErrOrStderr()
			cfg.Progress = cmd.ErrOrStderr()
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			cfg.StartWorker = startSelfWorker
			cfg.Generator.SendAfter, cfg.Generator.SendAfterWithCancellation = delayed, delayed
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("stateloop-%w", err)
			}
			if _, err := smoke.Run(cmd.Context(), cfg, cmd.OutOrStdout()); err != nil {
				return fmt.Errorf("stateloop-%w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&cfg.Brokers, "brokers", nil, "Kafka brokers, comma-separated host:port; without it an embedded broker is started")
	fs.StringVar(&cfg.App, "app", "", "application name: consumer group and topic prefix (default smoke-<random>)")
	fs.IntVarP(&cfg.Messages, "messages", "n", cfg.Messages, "source commands to produce")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "source commands per second; 0 produces as fast as possible")
	fs.IntVar(&cfg.Generator.IDs, "ids", cfg.Generator.IDs, "function ids, 0 to ids-1")
	fs.IntVar(&cfg.Generator.Depth, "depth", cfg.Generator.Depth, "command depth: each source command nests up to depth-1 levels of sends")
	fs.BoolVar(&delayed, "delayed", true, "generate delayed messages and cancellations (--delayed=false: only increment, send, send_egress and noop)")
	fs.DurationVar(&cfg.MaxDelay, "max-delay", cfg.MaxDelay, "longest delay of a delayed message: each waits a random time from 0 to max-delay")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes")
	fs.IntVar(&cfg.Kills, "kills", cfg.Kills, "SIGKILLs of a random worker (restarted at once), spread over the production")
	fs.BoolVar(&cfg.KillAnytime, "kill-anytime", false, "kill on schedule even while workers recover or join the group")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the commands and the kill schedule (default random)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "time limit of the run; ids not verified by then are reported as lost")
	fs.Int32Var(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of every topic of the application")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", 0, "consumer group session timeout of the workers (default 2s embedded, 6s with --brokers)")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", cfg.CommitInterval, "commit interval of the workers")
	fs.StringVar(&logLevel, "log-level", "warn", "level of the workers' and the embedded broker's logs on stderr: debug, info, warn or error")
	cmd.AddCommand(newSmokeWorkerCommand())
	// the worker is the only subcommand, and it is hidden
	cmd.CompletionOptions.DisableDefaultCmd = true
	return cmd
}

// startSelfWorker runs a smoke worker as this program, re-executed.
func startSelfWorker(cfg smoke.WorkerConfig) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run a worker with: %w", err)
	}
	return exec.Command(exe, append([]string{"worker"}, cfg.Args()...)...), nil
}

// newSmokeWorkerCommand is the hidden `stateloop-smoke worker`: one worker
// process of `stateloop-smoke`, which starts it with the arguments of
// smoke.WorkerConfig.Args. It stops when its standard input closes.
func newSmokeWorkerCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "worker",
		Short:              "Run one worker of stateloop-smoke (started by stateloop-smoke itself)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := smoke.ServeWorker(cmd.Context(), args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return fmt.Errorf("stateloop-smoke worker: exit code %d", code)
			}
			return nil
		},
	}
}
