package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/internal/bench"
)

func newBenchCommand() *cobra.Command {
	cfg := bench.DefaultConfig()
	var side, logLevel string
	var withRemote, withChain bool
	cmd := &cobra.Command{
		Use:   "stateloop-bench",
		Short: "Measure the runtime (threads, chains, remote functions) against a raw sarama exactly-once loop",
		Long: `Measure the throughput, latency and CPU cost of the stateloop runtime, and of
a hand-written sarama consume-transform-produce loop on the same broker for
comparison. Both read with read_committed and write in Kafka transactions that
commit the consumed offsets, every --commit-interval or --commit-count records.

The runtime side runs the function bench/counter: every record of its ingress
topic (key = one of --ids ids) goes to bench/counter/<key>, which adds one to
the count in its state and writes one egress record. The raw side writes one
output record per input record. With --remote (or --side remote) a third side
runs between them: the runtime with bench/counter written with the official
StateFun Go SDK, served by an HTTP server on 127.0.0.1 in the bench's process
and invoked as a remote function (StateFun's request-reply protocol, batched
per address, one request in flight per address). With --chain (or --side
chain) the chain side runs before the raw side: --chain-length functions
bench/chain-1 ... bench/chain-N in a row, each adding one to a count in its
state and sending the record on to the next at the same id, which the runtime
delivers in the sender's transaction (local delivery); the last writes the
output record. --threads sets the stream threads of the runtime
(processor.WithThreads, default 1): with a list (--threads 1,2) the runtime
side runs once with each and the report gives their ratio; the remote and
chain sides run with the first. Each side runs in turn:

  throughput  -n records are written in one transaction, so they become
              visible all at once; messages/s is measured from that commit
              to the moment the last output record is read (read_committed)
  latency     --rate records/s for --duration, each with its send time; the
              latency of a record runs from its send until its output record
              is read by a read_committed consumer

It prints messages/s of each side and their ratio, the p50 and p99 latency,
the CPU time per message, the log entries written per message and the load
average, with the targets of issue 11 (PASS or MISS: a miss is a measurement,
not an error): runtime/raw >= 0.8 and runtime p99 <= 3 x commit interval;
runtime 2 threads / 1 thread >= 1.4; remote/embedded >= 0.5 and at most 0.05
HTTP requests per message under the backlog; chain p50 <= 1.5 x commit
interval. --work gives every function (and the raw loop, per record) CPU work
of its own, so that stream threads have something to share out. The remote
side's CPU time per message includes the function server, which runs in the
bench's process.

--rounds N runs all the sides N times in turn (runtime, raw, runtime, raw,
...), so that a machine shared with other work loads every side alike: each
round is reported as above, then one line per round with the figures of the
targets, their medians, and the targets against the medians (the median of a
ratio is that of the rounds' ratios). Use an odd N. It fails if an input record does
not have exactly one output record, or the counts of the runtime, remote or
chain side are not exact.

With --timers it measures delayed messages (ctx.SendAfter) instead, in one
processor with its local store on disk (a temporary directory):

  stored      --timers-stored timers due in 1-2 hours: heap in use (after GC)
              and local store on disk per pending timer
  burst       --timers-burst timers due at one moment a few seconds ahead:
              heap per timer while they wait in memory, then timers fired/s
              from the due time to the last egress record read, against as
              many plain messages to the same function (from the ingress,
              and with ctx.Send)
  paced       --timers-rate delayed messages/s for --timers-duration with
              delays up to --timers-max-delay: lateness p50/p99/max, egress
              record read (read_committed) and function invoked minus the
              due time, also in commit intervals

It fails if a message does not arrive exactly once, or arrives before its due
time. --cpuprofile profiles the burst's firing (--profile-side fire), the
scheduling of the stored timers (schedule) or the paced phase (paced); --memprofile
writes heap profiles once the stored and the burst timers are scheduled.

With --recovery it measures recovery instead, with the counter application:

  restart     --recovery-addresses table records written directly to the
              table topic (the records the counter writes); an instance
              with an empty local store rebuilds them from the changelog
              (records/s, against a plain read_committed read of the same
              topic in the same run), then restarts on the store it built:
              time from start to serving (every partition's output read)
  instances   -n records pre-loaded in one transaction through 1, 2 and 3
              instances (child processes of the bench): messages/s, ratio
              to 1 instance
  pauses      --rate records/s through 3 instances; after --recovery-steady
              one is killed with SIGKILL (a) and not restarted, (b) started
              again at once with its instance id and local store: the
              longest gap between two outputs of any partition

Without --brokers it starts an embedded kfake broker on a free loopback port,
in a child process (--in-process: in this process, where its CPU time counts
as the bench's). With --brokers the bench creates its topics, named
bench-<random>-..., on that cluster and leaves them there. STATELOOP_BROKERS
is not used.`,
		Example: `  # the default bench: 100,000 records, then 5,000 records/s for 10s
  stateloop-bench

  # a quick run, with a CPU profile of the runtime's throughput phase
  stateloop-bench -n 20000 --duration 3s --cpuprofile cpu.out
  go tool pprof -top $(which stateloop-bench) cpu.out

  # the runtime with 1 and with 2 stream threads, and their ratio
  stateloop-bench --threads 1,2 --side runtime

  # a chain of 4 functions (3 local hops): latency against the commit interval
  stateloop-bench --side chain

  # the remote function over HTTP next to the embedded one and the raw loop
  stateloop-bench --remote

  # only the remote side, with a CPU profile of its throughput phase
  stateloop-bench --side remote --cpuprofile cpu.out --profile-side remote

  # against a Kafka cluster
  stateloop-bench --brokers 127.0.0.1:9092

  # every target of issue 11 on a Kafka cluster, 5 rounds, medians
  stateloop-bench --brokers 127.0.0.1:9092 --threads 1,2 --side runtime,remote,chain,raw --rounds 5

  # recovery: restart with 1,000,000 addresses, cold rebuild, 1-3 instances, kills
  stateloop-bench --recovery --brokers 127.0.0.1:9092

  # delayed messages: memory per pending timer, firing rate, lateness
  stateloop-bench --timers

  # a CPU profile of the firing of 500,000 timers due at one moment
  stateloop-bench --timers --timers-burst 500000 --cpuprofile cpu.out`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var runRuntime, runRaw bool
			switch {
			case cfg.Timers && (withRemote || withChain || side != "both" || cmd.Flags().Changed("threads") || cmd.Flags().Changed("rounds")):
				return fmt.Errorf("stateloop-bench: --timers runs its own application: no --side, --remote, --chain, --threads or --rounds")
			case cfg.Recovery && (cfg.Timers || withRemote || withChain || side != "both" || cmd.Flags().Changed("threads") || cmd.Flags().Changed("rounds") || cmd.Flags().Changed("profile-side")):
				return fmt.Errorf("stateloop-bench: --recovery runs its own application: no --timers, --side, --remote, --chain, --threads, --rounds or --profile-side (--cpuprofile profiles the cold rebuild)")
			case cfg.Timers:
				if cfg.ProfileSide == bench.SideRuntime {
					cfg.ProfileSide = bench.ProfileFire
				}
				if cfg.CPUProfile != "" && cfg.ProfileSide != bench.ProfileFire && cfg.ProfileSide != bench.ProfileSchedule && cfg.ProfileSide != bench.ProfilePaced {
					return fmt.Errorf("stateloop-bench: --profile-side %q: with --timers, want fire, schedule or paced", cfg.ProfileSide)
				}
			case cfg.MemProfile != "":
				return fmt.Errorf("stateloop-bench: --memprofile needs --timers")
			}
			for _, sd := range strings.Split(side, ",") {
				switch strings.TrimSpace(sd) {
				case "both":
					runRuntime, runRaw = true, true
				case bench.SideRuntime:
					runRuntime = true
				case bench.SideRaw:
					runRaw = true
				case bench.SideRemote:
					withRemote = true
				case bench.SideChain:
					withChain = true
				default:
					return fmt.Errorf("stateloop-bench: --side %q: want both, runtime, remote, chain or raw, or several of them separated by commas", side)
				}
			}
			cfg.Sides = nil
			for _, s := range []struct {
				name string
				on   bool
			}{{bench.SideRuntime, runRuntime}, {bench.SideRemote, withRemote}, {bench.SideChain, withChain}, {bench.SideRaw, runRaw}} {
				if s.on {
					cfg.Sides = append(cfg.Sides, s.name)
				}
			}
			if len(cfg.Brokers) > 0 {
				if err := app.CheckBrokers("stateloop-bench", cfg.Brokers); err != nil {
					return err
				}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("stateloop-bench: --log-level %q: want debug, info, warn or error", logLevel)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if withRemote {
				// The StateFun Go SDK of the remote side logs through the
				// standard logger (function registration, missing state
				// specs): make those debug records of the bench's log.
				log.SetFlags(0)
				log.SetOutput(sdkLogWriter{cfg.Logger})
				defer log.SetOutput(os.Stderr)
			}
			for _, f := range []struct {
				name string
				bad  bool
			}{
				{"-n", cfg.Messages <= 0}, {"--ids", cfg.IDs <= 0}, {"--warmup", cfg.Warmup <= 0},
				{"--rate", cfg.Rate <= 0}, {"--duration", cfg.PacedDuration <= 0},
				{"--commit-interval", cfg.CommitInterval <= 0}, {"--commit-count", cfg.CommitCount <= 0},
				{"--partitions", cfg.Partitions <= 0}, {"--progress", cfg.Progress <= 0}, {"--rounds", cfg.Rounds <= 0},
				{"--timers-stored", cfg.TimersStored <= 0}, {"--timers-burst", cfg.TimersBurst <= 0},
				{"--timers-rate", cfg.TimersRate <= 0}, {"--timers-duration", cfg.TimersDuration <= 0},
				{"--timers-max-delay", cfg.TimersMaxDelay < time.Millisecond},
				{"--recovery-addresses", cfg.RecoveryAddresses <= 0},
			} {
				if f.bad {
					return fmt.Errorf("stateloop-bench: %s must be positive", f.name)
				}
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("stateloop-%w", err)
			}
			if _, err := bench.Run(cmd.Context(), cfg, cmd.OutOrStdout()); err != nil {
				return fmt.Errorf("stateloop-bench: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&cfg.Brokers, "brokers", nil, "Kafka brokers, comma-separated host:port; without it an embedded broker is started")
	fs.BoolVar(&cfg.InProcess, "in-process", false, "run the embedded broker in this process instead of a child process")
	fs.Int32Var(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of every topic")
	fs.IntVarP(&cfg.Messages, "messages", "n", cfg.Messages, "records of the throughput phase")
	fs.IntVar(&cfg.IDs, "ids", cfg.IDs, "distinct keys (function ids) the records are spread over")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "records of the warm-up before the throughput phase")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "records per second of the latency phase")
	fs.DurationVar(&cfg.PacedDuration, "duration", cfg.PacedDuration, "duration of the latency phase")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", cfg.CommitInterval, "commit a transaction when it is this old (every side)")
	fs.IntVar(&cfg.CommitCount, "commit-count", cfg.CommitCount, "commit a transaction when it has consumed this many records (every side)")
	fs.StringVar(&side, "side", "both", "what to measure: both (runtime and raw), runtime, remote, chain or raw, or a comma-separated list of them")
	fs.BoolVar(&withRemote, "remote", false, "also measure bench/counter as a remote function (StateFun Go SDK over HTTP), after the runtime side")
	fs.DurationVar(&cfg.Work, "work", 0, "CPU time each invocation (and the raw loop for each record) spends hashing, e.g. 20us: a function with work of its own")
	fs.IntVar(&cfg.RemoteMaxInFlight, "remote-max-in-flight", 0, "HTTP requests the remote side's client has open at once (remote.Config.MaxInFlight; 0: its default, 1024)")
	fs.BoolVar(&withChain, "chain", false, "also measure a chain of --chain-length functions (messages to the same id: local delivery), before the raw side")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "run the sides this many times, in turn (a, b, a, b, ...), and report each round and the medians; odd counts give a plain median")
	fs.IntVar(&cfg.ChainLength, "chain-length", cfg.ChainLength, "functions of the chain side")
	fs.IntSliceVar(&cfg.Threads, "threads", cfg.Threads, "stream threads of the runtime (processor.WithThreads); a list, e.g. 1,2, runs the runtime side once with each and compares them")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the throughput phase of --profile-side to this file")
	fs.StringVar(&cfg.ProfileSide, "profile-side", bench.SideRuntime, "the side --cpuprofile profiles: runtime (its first thread count), remote, chain or raw; with --timers fire, schedule or paced (runtime means fire)")
	fs.BoolVar(&cfg.Timers, "timers", false, "measure delayed messages (memory per pending timer, firing rate, lateness) instead of the sides")
	fs.IntVar(&cfg.TimersStored, "timers-stored", cfg.TimersStored, "with --timers: timers due in 1-2 hours, which stay in the local store")
	fs.IntVar(&cfg.TimersBurst, "timers-burst", cfg.TimersBurst, "with --timers: timers due at one moment, and plain messages of each baseline")
	fs.IntVar(&cfg.TimersRate, "timers-rate", cfg.TimersRate, "with --timers: delayed messages per second of the paced phase")
	fs.DurationVar(&cfg.TimersDuration, "timers-duration", cfg.TimersDuration, "with --timers: duration of the paced phase")
	fs.DurationVar(&cfg.TimersMaxDelay, "timers-max-delay", cfg.TimersMaxDelay, "with --timers: delays of the paced phase are uniform from 0 to this")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "with --timers: write heap profiles to this path + .stored and .burst once those timers are scheduled")
	fs.BoolVar(&cfg.Recovery, "recovery", false, "measure recovery instead of the sides: restart on the local store and cold rebuild, 1-3 instances, pauses when an instance is killed")
	fs.IntVar(&cfg.RecoveryAddresses, "recovery-addresses", cfg.RecoveryAddresses, "with --recovery: addresses whose state the restart and the rebuild recover")
	fs.DurationVar(&cfg.RecoverySteady, "recovery-steady", cfg.RecoverySteady, "with --recovery: paced load before an instance is killed")
	fs.DurationVar(&cfg.RecoveryAfter, "recovery-after", cfg.RecoveryAfter, "with --recovery: paced load after an instance is killed (the pause of the killed instance's partitions is about the session timeout plus the transaction timeout)")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", 0, "with --recovery: session timeout of the instances (0: the processor's default, 10s)")
	fs.DurationVar(&cfg.TransactionTimeout, "transaction-timeout", 0, "with --recovery: transaction timeout of the instances (0: the processor's default, 15s)")
	fs.DurationVar(&cfg.Progress, "progress", cfg.Progress, "how often to print a progress line")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of the processor and broker logs on stderr: "+strings.Join([]string{"debug", "info", "warn", "error"}, ", "))
	return cmd
}

// sdkLogWriter turns the lines of the standard logger into debug records.
type sdkLogWriter struct{ l *slog.Logger }

func (w sdkLogWriter) Write(p []byte) (int, error) {
	w.l.Log(context.Background(), slog.LevelDebug, strings.TrimSpace(string(p)), "source", "statefun-sdk")
	return len(p), nil
}
