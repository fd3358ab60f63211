// Package bench measures the stateloop runtime against a hand-written sarama
// consume-transform-produce loop on the same broker, both with Kafka
// transactions (exactly-once) and the same commit policy.
//
// Each side runs, one after the other, three phases:
//
//   - warm-up: a few records, to know that the side consumes and produces
//     before anything is timed;
//   - throughput: N records are written to the side's input topic in one
//     transaction, so they become visible to the side's read_committed
//     consumer all at once; the time from that commit to the moment the
//     last of the N output records is visible to a read_committed consumer
//     gives messages/s;
//   - latency: records are written at a fixed rate, each carrying its send
//     time; the time from the send to the moment the output record is
//     visible to a read_committed consumer is the latency of that record.
//
// The runtime side is a processor (package processor) running the function
// bench/counter: it counts the records of each id in its state and writes
// one egress record per input record. The raw side is one transactional
// sarama producer and a read_committed consumer group, committing the
// consumed offsets with AddOffsetsToTxnWithGroupMetadata and CommitTxn when
// the transaction is CommitInterval old or has CommitCount records, as the
// processor does. The remote side (optional) is the runtime side with
// bench/counter written with the official StateFun Go SDK and served over
// HTTP by a server in this process (see remote.go). The chain side
// (optional) is the runtime side with a chain of functions instead of one
// (chain.go): each message to the next function goes to the same id, so
// the runtime delivers it in its sender's transaction. The runtime side
// runs once per stream thread count of Config.Threads. Every side writes
// one output record per input record; the bench checks that every input
// record has exactly one output record, and for the runtime, remote and
// chain sides that the counts of every id are exact.
//
// With Config.Timers, Run measures delayed messages instead (see
// timers.go): the memory and disk cost of pending timers, the firing rate
// of timers due at one moment against plain messages, and the lateness of
// delayed messages under a paced load.
//
// With no brokers, Run starts an embedded kfake broker, by default in a
// child process (see package embedded: the program's main must
// call embedded.ServeIfChild first).
package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/processor"
)

// The sides of the bench.
const (
	SideRuntime = "runtime"
	SideRaw     = "raw"
	// SideRemote is the runtime with bench/counter as a remote function
	// (StateFun Go SDK over HTTP on 127.0.0.1, in this process).
	SideRemote = "remote"
	// SideChain is the runtime with a chain of Config.ChainLength
	// functions, each sending to the next at the same id (local delivery).
	SideChain = "chain"
)

// Targets printed next to the figures (those of issue 11, "Engine 2"). A
// miss is reported, not an error.
const (
	// RatioTarget is the least runtime/raw throughput ratio aimed for, the
	// runtime with its first thread count (one thread by default, as the
	// raw loop has one producer and one goroutine).
	RatioTarget = 0.8
	// LatencyTargetFactor times the commit interval is the highest p99
	// latency of the runtime aimed for.
	LatencyTargetFactor = 3
	// ThreadsTarget is the least throughput ratio aimed for between the
	// runtime with 2 stream threads and with 1.
	ThreadsTarget = 1.4
	// RemoteRatioTarget is the least remote/embedded throughput ratio
	// aimed for, and RemoteRequestsTarget the most HTTP requests per
	// message, both in the throughput phase (a backlog).
	RemoteRatioTarget    = 0.5
	RemoteRequestsTarget = 0.05
	// ChainLatencyTargetFactor times the commit interval is the highest
	// p50 latency of the chain side aimed for.
	ChainLatencyTargetFactor = 1.5
)

// maxThreads is the most stream threads of processor.WithThreads.
const maxThreads = 256

// maxRounds is the most rounds of a run.
const maxRounds = 100

// Config of a bench run. The zero value of a field means its default
// (DefaultConfig).
type Config struct {
	// Brokers of a running Kafka cluster; empty starts an embedded broker.
	Brokers []string
	// InProcess runs the embedded broker in this process instead of a
	// child process. Its CPU time then counts as this process's.
	InProcess bool
	// Partitions of every topic the bench creates (default 8).
	Partitions int32

	// Messages is the number of records of the throughput phase (default
	// 100,000).
	Messages int
	// IDs is the number of distinct keys (function ids) the records are
	// spread over, round robin (default 1000).
	IDs int
	// Warmup is the number of records of the warm-up phase (default 1000).
	Warmup int
	// Rate (records/s) and PacedDuration of the latency phase (default
	// 5000/s for 10s).
	Rate          int
	PacedDuration time.Duration

	// CommitInterval and CommitCount are the commit policy of every side
	// (default 100ms, 5000 records).
	CommitInterval time.Duration
	CommitCount    int

	// Sides to run, in this order: any of SideRuntime, SideRemote,
	// SideChain and SideRaw (default SideRuntime, SideRaw).
	Sides []string
	// Threads are the stream thread counts (processor.WithThreads) of the
	// runtime side: it runs once with each, in this order, and the report
	// compares each with the first (default 1). The remote and chain
	// sides run with the first.
	Threads []int
	// Work is CPU time each invocation of a function of the runtime,
	// remote and chain sides, and the raw loop for each record, spends
	// hashing before it counts (calibrated at the start of the run;
	// default 0: none).
	Work time.Duration
	// RemoteMaxInFlight bounds the HTTP requests the remote side's client
	// has open at once (remote.Config.MaxInFlight; default 1024).
	RemoteMaxInFlight int
	// Rounds is how many times the sides run, in turn (default 1): with
	// rounds a, b, a, b, ... every side gets its share of a machine whose
	// load changes, and the report gives each round's figures and their
	// medians (see Result.Rounds).
	Rounds int
	// ChainLength is the number of functions of the chain side (default
	// 4): an input record is delivered to the first, each sends it on to
	// the next, the last writes the output record.
	ChainLength int
	// CPUProfile, if set, is where a CPU profile of ProfileSide's
	// throughput phase is written (default side: runtime).
	CPUProfile  string
	ProfileSide string
	// Progress is how often a progress line is printed (default 1s).
	Progress time.Duration
	// Logger gets the logs of the processor and the embedded broker
	// (default: discard).
	Logger *slog.Logger

	// Timers runs the delayed-messages bench (timers.go) instead of the
	// sides. Sides is then ignored; ProfileSide is ProfileFire (the
	// default), ProfileSchedule or ProfilePaced.
	Timers bool
	// TimersStored is the number of timers due in one to two hours, which
	// stay in the local store (default 1,000,000).
	TimersStored int
	// TimersBurst is the number of timers due at one moment, held in
	// memory until then, and of plain messages of each baseline (default
	// 200,000).
	TimersBurst int
	// TimersRate (delayed messages/s), TimersDuration and TimersMaxDelay
	// (delays are uniform from 0 to it) of the paced phase (default
	// 2,000/s for 10s, delays up to 2s).
	TimersRate     int
	TimersDuration time.Duration
	TimersMaxDelay time.Duration
	// MemProfile, if set, is the prefix of the heap profiles the
	// delayed-messages bench writes once the stored and the burst timers
	// are scheduled (MemProfile.stored, MemProfile.burst).
	MemProfile string

	// Recovery runs the recovery bench (recovery.go) instead of the
	// sides: restart on the local store and cold rebuild of
	// RecoveryAddresses addresses, throughput of 1, 2 and 3 instances, and
	// the longest pause of a partition when one instance of three is
	// killed. Sides is then ignored.
	Recovery bool
	// RecoveryAddresses is the number of addresses whose state the
	// restart and the rebuild recover (default 1,000,000).
	RecoveryAddresses int
	// RecoverySteady is how long the paced load runs before the kill, and
	// RecoveryAfter how long after it (default 5s and 20s: the processor's
	// session timeout is 10s).
	RecoverySteady, RecoveryAfter time.Duration
	// SessionTimeout and TransactionTimeout are those of the recovery
	// bench's child instances (processor.WithSessionTimeout,
	// processor.WithTransactionTimeout); zero: the processor's defaults
	// (10s, 15s).
	SessionTimeout, TransactionTimeout time.Duration

	// timersSinkSkew, set by tests only, is subtracted from the time the
	// delayed-messages bench's sink reports for its invocations, so that
	// tests can see the "never early" check fail.
	timersSinkSkew time.Duration

	// remoteFault, set by tests only, changes each count the remote
	// function computes, so that tests can see the checks fail.
	remoteFault func(int64) int64
}

// DefaultConfig returns the defaults of every field.
func DefaultConfig() Config {
	return Config{
		Partitions:     8,
		Messages:       100_000,
		IDs:            1000,
		Warmup:         1000,
		Rate:           5000,
		PacedDuration:  10 * time.Second,
		CommitInterval: 100 * time.Millisecond,
		CommitCount:    5000,
		Sides:          []string{SideRuntime, SideRaw},
		Threads:        []int{1},
		ChainLength:    4,
		Rounds:         1,
		ProfileSide:    SideRuntime,
		Progress:       time.Second,
		TimersStored:   1_000_000,
		TimersBurst:    200_000,
		TimersRate:     2000,
		TimersDuration: 10 * time.Second,
		TimersMaxDelay: 2 * time.Second,

		RecoveryAddresses: 1_000_000,
		RecoverySteady:    5 * time.Second,
		RecoveryAfter:     20 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Partitions = cmp.Or(c.Partitions, d.Partitions)
	c.Messages = cmp.Or(c.Messages, d.Messages)
	c.IDs = cmp.Or(c.IDs, d.IDs)
	c.Warmup = cmp.Or(c.Warmup, d.Warmup)
	c.Rate = cmp.Or(c.Rate, d.Rate)
	c.PacedDuration = cmp.Or(c.PacedDuration, d.PacedDuration)
	c.CommitInterval = cmp.Or(c.CommitInterval, d.CommitInterval)
	c.CommitCount = cmp.Or(c.CommitCount, d.CommitCount)
	if len(c.Sides) == 0 {
		c.Sides = d.Sides
	}
	if len(c.Threads) == 0 {
		c.Threads = d.Threads
	}
	c.ChainLength = cmp.Or(c.ChainLength, d.ChainLength)
	c.Rounds = cmp.Or(c.Rounds, d.Rounds)
	if c.ProfileSide == "" {
		c.ProfileSide = d.ProfileSide
	}
	if c.Timers && c.ProfileSide == SideRuntime {
		c.ProfileSide = ProfileFire
	}
	c.TimersStored = cmp.Or(c.TimersStored, d.TimersStored)
	c.TimersBurst = cmp.Or(c.TimersBurst, d.TimersBurst)
	c.TimersRate = cmp.Or(c.TimersRate, d.TimersRate)
	c.TimersDuration = cmp.Or(c.TimersDuration, d.TimersDuration)
	c.TimersMaxDelay = cmp.Or(c.TimersMaxDelay, d.TimersMaxDelay)
	c.RecoveryAddresses = cmp.Or(c.RecoveryAddresses, d.RecoveryAddresses)
	c.RecoverySteady = cmp.Or(c.RecoverySteady, d.RecoverySteady)
	c.RecoveryAfter = cmp.Or(c.RecoveryAfter, d.RecoveryAfter)
	c.Progress = cmp.Or(c.Progress, d.Progress)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("bench: "+format, a...)) }
	if c.Partitions < 0 {
		add("partitions %d: must be positive", c.Partitions)
	}
	if c.Messages < 0 {
		add("messages %d: must be positive", c.Messages)
	}
	if c.IDs < 0 {
		add("ids %d: must be positive", c.IDs)
	}
	if c.Warmup < 0 {
		add("warm-up %d: must be positive", c.Warmup)
	}
	if c.Rate < 0 {
		add("rate %d: must be positive", c.Rate)
	}
	if c.PacedDuration < 0 {
		add("paced duration %v: must be positive", c.PacedDuration)
	}
	if c.pacedMessages() > 1<<31 {
		add("rate %d for %v: too many records", c.Rate, c.PacedDuration)
	}
	if c.CommitInterval < 0 {
		add("commit interval %v: must be positive", c.CommitInterval)
	}
	if c.CommitCount < 0 {
		add("commit count %d: must be positive", c.CommitCount)
	}
	seen := map[string]bool{}
	for _, s := range c.Sides {
		switch s {
		case SideRuntime, SideRaw, SideRemote, SideChain:
		default:
			add("side %q: want %s, %s, %s or %s", s, SideRuntime, SideRemote, SideChain, SideRaw)
		}
		if seen[s] {
			add("side %q named twice", s)
		}
		seen[s] = true
	}
	seenThreads := map[int]bool{}
	for _, n := range c.Threads {
		if n < 1 || n > maxThreads {
			add("threads %d: want 1 to %d", n, maxThreads)
		}
		if seenThreads[n] {
			add("threads %d named twice", n)
		}
		seenThreads[n] = true
	}
	if c.Timers && (len(c.Threads) != 1 || c.Threads[0] != 1) {
		add("threads %v: the delayed-messages bench runs one thread", c.Threads)
	}
	if c.Rounds < 1 || c.Rounds > maxRounds {
		add("rounds %d: want 1 to %d", c.Rounds, maxRounds)
	}
	if c.Timers && c.Rounds != 1 {
		add("rounds %d: the delayed-messages bench runs once", c.Rounds)
	}
	if c.ChainLength < 2 || c.ChainLength > 64 {
		add("chain length %d: want 2 to 64", c.ChainLength)
	}
	switch {
	case c.Recovery:
		// --cpuprofile profiles the cold rebuild
	case c.Timers:
		if c.CPUProfile != "" && c.ProfileSide != ProfileFire && c.ProfileSide != ProfileSchedule && c.ProfileSide != ProfilePaced {
			add("profile side %q: with timers, want %s, %s or %s", c.ProfileSide, ProfileFire, ProfileSchedule, ProfilePaced)
		}
	case c.CPUProfile != "" && !seen[c.ProfileSide]:
		add("profile side %q: not one of the sides that run (%s)", c.ProfileSide, strings.Join(c.Sides, ", "))
	}
	if c.Timers {
		for _, f := range []struct {
			name string
			v    int64
		}{
			{"stored timers", int64(c.TimersStored)}, {"burst timers", int64(c.TimersBurst)}, {"timers rate", int64(c.TimersRate)},
			{"timers duration", int64(c.TimersDuration)}, {"timers max delay", int64(c.TimersMaxDelay)},
		} {
			if f.v < 0 {
				add("%s %d: must be positive", f.name, f.v)
			}
		}
		if c.TimersMaxDelay > 0 && c.TimersMaxDelay < time.Millisecond {
			add("timers max delay %v: at least 1ms", c.TimersMaxDelay)
		}
		if float64(c.TimersRate)*c.TimersDuration.Seconds() > 1<<31 {
			add("timers rate %d for %v: too many messages", c.TimersRate, c.TimersDuration)
		}
	}
	if c.Work < 0 {
		add("work %v: must not be negative", c.Work)
	}
	if c.Timers && c.Work != 0 {
		add("work %v: not for the delayed-messages bench", c.Work)
	}
	if c.Recovery {
		if c.Timers {
			add("recovery and timers: run one of them at a time")
		}
		if c.Rounds != 1 {
			add("rounds %d: the recovery bench runs once", c.Rounds)
		}
		if c.RecoveryAddresses < 0 {
			add("recovery addresses %d: must be positive", c.RecoveryAddresses)
		}
		if c.RecoverySteady < 2*time.Second || c.RecoveryAfter < time.Second {
			add("recovery steady %v and after %v: want at least 2s and 1s", c.RecoverySteady, c.RecoveryAfter)
		}
		if c.Work != 0 {
			add("work %v: not for the recovery bench", c.Work)
		}
		if c.SessionTimeout != 0 && c.SessionTimeout < time.Second {
			add("session timeout %v: at least 1s", c.SessionTimeout)
		}
		if c.TransactionTimeout != 0 && c.TransactionTimeout < time.Second {
			add("transaction timeout %v: at least 1s", c.TransactionTimeout)
		}
	} else if c.SessionTimeout != 0 || c.TransactionTimeout != 0 {
		add("session timeout %v, transaction timeout %v: for the recovery bench only", c.SessionTimeout, c.TransactionTimeout)
	}
	if c.Progress < 0 {
		add("progress interval %v: must be positive", c.Progress)
	}
	return errors.Join(errs...)
}

// pacedMessages is the number of records of the latency phase.
func (c Config) pacedMessages() int {
	n := int(float64(c.Rate) * c.PacedDuration.Seconds())
	if n < 1 {
		n = 1
	}
	return n
}

// Result of a bench run.
type Result struct {
	// Broker describes the broker the bench ran on.
	Broker string
	// Config is the configuration with the defaults filled in.
	Config Config
	// Runtime, Remote, Chain and Raw are the figures of each side; nil if
	// it did not run. Runtime is the runtime side with the first thread
	// count.
	Runtime, Remote, Chain, Raw *SideResult
	// RuntimeThreads are the runtime side's figures for each thread count
	// of Config.Threads, in its order; RuntimeThreads[0] is Runtime.
	RuntimeThreads []*SideResult
	// Ratio is runtime/raw messages/s of the throughput phase; 0 unless
	// both sides ran.
	Ratio float64
	// RatioOK and LatencyOK say whether the targets were met.
	RatioOK, LatencyOK bool
	// ThreadsRatio is messages/s of the throughput phase of the runtime
	// with 2 stream threads over that with 1; 0 unless both ran.
	// ThreadsOK says whether it met ThreadsTarget.
	ThreadsRatio float64
	ThreadsOK    bool
	// RemoteRatio is remote/runtime and RemoteRawRatio remote/raw
	// messages/s of the throughput phase; 0 unless both sides ran.
	RemoteRatio, RemoteRawRatio float64
	// RemoteRatioOK and RemoteRequestsOK say whether the remote side met
	// RemoteRatioTarget and RemoteRequestsTarget in the throughput phase.
	RemoteRatioOK, RemoteRequestsOK bool
	// RemoteLatencyOK says whether the remote side's p99 latency met the
	// runtime's latency target (for information: the target is the
	// runtime's).
	RemoteLatencyOK bool
	// ChainLatencyOK says whether the chain side's p50 latency met
	// ChainLatencyTargetFactor x the commit interval.
	ChainLatencyOK bool
	// Timers holds the figures of the delayed-messages bench; nil unless
	// Config.Timers.
	Timers *TimersResult
	// Recovery holds the figures of the recovery bench; nil unless
	// Config.Recovery.
	Recovery *RecoveryResult
	// Rounds holds the result of each round when Config.Rounds > 1. The
	// side figures above (Runtime, Remote, Chain, Raw, RuntimeThreads) are
	// then nil, and the ratios and targets above are the medians of the
	// rounds' (see Medians).
	Rounds []Result
	// Medians are the medians over Rounds; zero unless Config.Rounds > 1.
	Medians Medians
}

// SideResult holds the figures of one side.
type SideResult struct {
	// Name is the side (SideRuntime, ...), Label its name in the output
	// ("runtime (2 threads)" when several thread counts run).
	Name, Label string
	// Threads is the number of stream threads of the processor; 0 for the
	// raw side.
	Threads int
	// LoadBefore and LoadAfter are the machine's 1-minute load average
	// when the side started and when it was done; -1 if unknown.
	LoadBefore, LoadAfter float64
	Throughput            Phase
	Paced                 Phase
	// Outputs is the number of output records read in all phases; Inputs
	// the number of input records written.
	Inputs, Outputs int
	// Checks are the correctness checks that passed, as sentences.
	Checks []string
	// HTTP holds what the function server served in all phases (warm-up
	// included); nil unless the side runs remote functions.
	HTTP *HTTPFigures
}

// Phase holds the figures of one timed phase of a side.
type Phase struct {
	Messages int
	Elapsed  time.Duration
	// PerSecond is Messages / Elapsed.
	PerSecond float64
	// CPU is the CPU time (user + system) of this process during the
	// phase; BrokerCPU that of the embedded broker's child process, -1 if
	// unknown (an in-process or external broker). MachineCPU is the busy
	// time of all the machine's CPUs, -1 if unknown: what other processes
	// used is MachineCPU - CPU - BrokerCPU.
	CPU, BrokerCPU, MachineCPU time.Duration
	// Commits is the number of transactions the side committed.
	Commits int64
	// Offsets is, per topic the side writes, how far its log end moved
	// (records plus transaction markers).
	Offsets []TopicOffsets
	// P50, P99 and Max are the ingress-to-egress latencies (latency phase
	// only).
	P50, P99, Max time.Duration
	// HTTP holds the function server's figures of the phase; nil unless
	// the side runs remote functions.
	HTTP *HTTPFigures
	// Local is the number of messages between functions the processor
	// delivered in their sender's transaction (processor.Stats.Local); -1
	// for the raw side.
	Local int64
	// CommitTime is the mean and CommitMax the longest time a commit took
	// in the phase: for a processor processor.Metrics.Commit (handing over
	// the last records, AddOffsetsToTxn, CommitTxn and every
	// acknowledgement), for the raw loop AddOffsetsToTxn and CommitTxn; -1
	// if there was none.
	CommitTime, CommitMax time.Duration
}

// LocalPerMessage returns the messages delivered in their sender's
// transaction per message of the phase, -1 for the raw side.
func (p Phase) LocalPerMessage() float64 {
	if p.Local < 0 || p.Messages == 0 {
		return -1
	}
	return float64(p.Local) / float64(p.Messages)
}

// HTTPFigures is what the remote side's function server served in a phase.
type HTTPFigures struct {
	// Requests is the number of HTTP requests the server received (one
	// per batch of calls to an address, plus missing-state round trips
	// and retries).
	Requests int64
	// Connections is the number of connections it accepted (the client
	// keeps them alive between requests).
	Connections int64
	// Calls is the number of invocations of the function.
	Calls int64
}

// RequestsPerMessage returns the HTTP requests per message of the phase,
// -1 unless the side runs remote functions.
func (p Phase) RequestsPerMessage() float64 {
	if p.HTTP == nil || p.Messages == 0 {
		return -1
	}
	return float64(p.HTTP.Requests) / float64(p.Messages)
}

// CallsPerRequest returns the mean batch size of the phase's HTTP
// requests, -1 unless the side runs remote functions or made a request.
func (p Phase) CallsPerRequest() float64 {
	if p.HTTP == nil || p.HTTP.Requests == 0 {
		return -1
	}
	return float64(p.HTTP.Calls) / float64(p.HTTP.Requests)
}

// TopicOffsets is how far a topic's log end offsets moved in a phase.
type TopicOffsets struct {
	Role  string // "loop", "changelog", "egress", "output"
	Topic string
	Delta int64
}

// CPUPerMessage returns the process CPU time per message.
func (p Phase) CPUPerMessage() time.Duration {
	if p.Messages == 0 {
		return 0
	}
	return p.CPU / time.Duration(p.Messages)
}

// BrokerCPUPerMessage returns the broker CPU time per message, -1 if
// unknown.
func (p Phase) BrokerCPUPerMessage() time.Duration {
	if p.BrokerCPU < 0 || p.Messages == 0 {
		return -1
	}
	return p.BrokerCPU / time.Duration(p.Messages)
}

// LatencyTarget returns the p99 latency target for the commit interval.
func (c Config) LatencyTarget() time.Duration { return LatencyTargetFactor * c.CommitInterval }

// ChainLatencyTarget returns the chain side's p50 latency target for the
// commit interval.
func (c Config) ChainLatencyTarget() time.Duration {
	return time.Duration(ChainLatencyTargetFactor * float64(c.CommitInterval))
}

// sideRun is one run of a side.
type sideRun struct {
	name    string // SideRuntime, ...
	label   string // in progress lines and errors
	threads int    // stream threads; 0 for the raw side
}

// runs returns the runs of the sides, in order: the runtime side once per
// thread count, the remote and chain sides with the first.
func (c Config) runs() []sideRun {
	var runs []sideRun
	for _, s := range c.Sides {
		switch s {
		case SideRuntime:
			for _, n := range c.Threads {
				label := s
				if len(c.Threads) > 1 {
					label = fmt.Sprintf("runtime (%s)", threadsText(n))
				}
				runs = append(runs, sideRun{name: s, label: label, threads: n})
			}
		case SideRaw:
			runs = append(runs, sideRun{name: s, label: s})
		default:
			runs = append(runs, sideRun{name: s, label: s, threads: c.Threads[0]})
		}
	}
	return runs
}

// threadsText is "1 thread" or "n threads".
func threadsText(n int) string {
	if n == 1 {
		return "1 thread"
	}
	return strconv.Itoa(n) + " threads"
}

// bench is one run.
type bench struct {
	cfg     Config
	out     io.Writer
	brokers []string
	runID   string
	broker  *embedded.Broker
	client  sarama.Client
	// work is Config.Work in rounds of burn
	work int
	// profiled is set once a side's throughput phase was profiled: with
	// several thread counts only the first runtime run is.
	profiled bool
}

// Run runs the bench, printing progress lines and the report to out. It
// returns an error when the bench cannot run or a side does not produce
// exactly one output record per input record; a missed target is not an
// error.
func Run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	// before anything else runs in this process
	b := &bench{cfg: cfg, out: out, brokers: cfg.Brokers, runID: randomID(), work: calibrateWork(cfg.Work)}
	res := Result{Config: cfg}
	if len(b.brokers) == 0 {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		brk, err := embedded.Start(sctx, embedded.Config{
			Listen:     "127.0.0.1:0",
			InProcess:  cfg.InProcess,
			Partitions: cfg.Partitions,
			Logger:     cfg.Logger,
		})
		cancel()
		if err != nil {
			return res, fmt.Errorf("bench: start the embedded broker: %w", err)
		}
		defer brk.Close()
		b.broker = brk
		b.brokers = []string{brk.Addr()}
		if cfg.InProcess {
			res.Broker = "embedded kfake in this process at " + brk.Addr() + " (its CPU time counts as the process's)"
		} else {
			res.Broker = "embedded kfake in a child process at " + brk.Addr()
		}
	} else {
		res.Broker = "Kafka at " + strings.Join(b.brokers, ",")
	}
	client, err := sarama.NewClient(b.brokers, clientConfig())
	if err != nil {
		return res, fmt.Errorf("bench: connect to Kafka at %s: %w", strings.Join(b.brokers, ","), err)
	}
	defer client.Close()
	b.client = client

	if cfg.Timers {
		fmt.Fprintln(out, "stateloop-bench --timers: delayed messages (ctx.SendAfter) in the runtime, exactly-once (read_committed, transactions)")
		fmt.Fprintf(out, "broker: %s; %d partitions per topic\n", res.Broker, cfg.Partitions)
		if cfg.InProcess {
			fmt.Fprintln(out, "note: the broker runs in this process, so its memory is in the heap figures")
		}
		fmt.Fprintf(out, "machine: %d CPUs, GOMAXPROCS %d, %s/%s, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
		fmt.Fprintf(out, "commit policy: every %v or %s records, whichever comes first\n\n", cfg.CommitInterval, num(cfg.CommitCount))
		tr, err := b.runTimers(ctx)
		if err != nil {
			return res, err
		}
		res.Timers = tr
		reportTimers(out, res)
		return res, nil
	}
	if cfg.Recovery {
		fmt.Fprintln(out, "stateloop-bench --recovery: restart, rebuild, instances and pauses of the counter application, exactly-once")
		fmt.Fprintf(out, "broker: %s; %d partitions per topic\n", res.Broker, cfg.Partitions)
		fmt.Fprintf(out, "machine: %d CPUs, GOMAXPROCS %d, %s/%s, %s; load average %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), loadText(loadAverage()))
		fmt.Fprintf(out, "commit policy: every %v or %s records, whichever comes first\n\n", cfg.CommitInterval, num(cfg.CommitCount))
		rr, err := b.runRecovery(ctx)
		if err != nil {
			return res, err
		}
		res.Recovery = rr
		reportRecovery(out, res)
		return res, nil
	}
	fmt.Fprintf(out, "stateloop-bench: %s, exactly-once (read_committed, transactions)\n", describeSides(cfg))
	fmt.Fprintf(out, "broker: %s; %d partitions per topic\n", res.Broker, cfg.Partitions)
	fmt.Fprintf(out, "machine: %d CPUs, GOMAXPROCS %d, %s/%s, %s; load average %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), loadText(loadAverage()))
	if slices.Contains(cfg.Sides, SideRuntime) || slices.Contains(cfg.Sides, SideRemote) || slices.Contains(cfg.Sides, SideChain) {
		fmt.Fprintf(out, "stream threads of the runtime: %s\n", threadsList(cfg))
	}
	fmt.Fprintf(out, "commit policy (every side): every %v or %s records, whichever comes first\n", cfg.CommitInterval, num(cfg.CommitCount))
	if cfg.Work > 0 {
		fmt.Fprintf(out, "work per invocation (and per raw record): %v of CPU, %s rounds of SHA-256 as calibrated on this machine\n", cfg.Work, num(b.work))
	}
	fmt.Fprintf(out, "phases per side: warm-up %s records; throughput %s records pre-loaded in one transaction, %s ids; latency %s records/s for %v\n\n",
		num(cfg.Warmup), num(cfg.Messages), num(cfg.IDs), num(cfg.Rate), cfg.PacedDuration)

	if cfg.Rounds == 1 {
		if err := b.runRound(ctx, &res); err != nil {
			return res, err
		}
		report(out, res)
		return res, nil
	}
	base := b.runID
	for r := 1; r <= cfg.Rounds; r++ {
		// topics, groups and transactional ids of their own in each round
		b.runID = fmt.Sprintf("%s-r%d", base, r)
		fmt.Fprintf(out, "ROUND %d of %d\n\n", r, cfg.Rounds)
		rr := Result{Config: cfg, Broker: res.Broker}
		if err := b.runRound(ctx, &rr); err != nil {
			return res, err
		}
		report(out, rr)
		fmt.Fprintln(out)
		res.Rounds = append(res.Rounds, rr)
	}
	res.medians()
	reportRounds(out, res)
	return res, nil
}

// runRound runs every side once, in the order of Config.runs, into res,
// and sets its ratios and targets.
func (b *bench) runRound(ctx context.Context, res *Result) error {
	cfg := b.cfg
	for _, run := range cfg.runs() {
		sr, err := b.runSide(ctx, run)
		if err != nil {
			return err
		}
		switch run.name {
		case SideRuntime:
			res.RuntimeThreads = append(res.RuntimeThreads, sr)
			if res.Runtime == nil {
				res.Runtime = sr
			}
		case SideRemote:
			res.Remote = sr
		case SideChain:
			res.Chain = sr
		case SideRaw:
			res.Raw = sr
		}
	}
	ratio := func(a, b *SideResult) float64 {
		if a == nil || b == nil || b.Throughput.PerSecond <= 0 {
			return 0
		}
		return a.Throughput.PerSecond / b.Throughput.PerSecond
	}
	if res.Ratio = ratio(res.Runtime, res.Raw); res.Ratio > 0 {
		res.RatioOK = res.Ratio >= RatioTarget
	}
	var one, two *SideResult
	for _, sr := range res.RuntimeThreads {
		switch sr.Threads {
		case 1:
			one = sr
		case 2:
			two = sr
		}
	}
	if res.ThreadsRatio = ratio(two, one); res.ThreadsRatio > 0 {
		res.ThreadsOK = res.ThreadsRatio >= ThreadsTarget
	}
	res.RemoteRatio = ratio(res.Remote, res.Runtime)
	res.RemoteRawRatio = ratio(res.Remote, res.Raw)
	if res.RemoteRatio > 0 {
		res.RemoteRatioOK = res.RemoteRatio >= RemoteRatioTarget
	}
	if res.Runtime != nil {
		res.LatencyOK = res.Runtime.Paced.P99 <= cfg.LatencyTarget()
	}
	if res.Remote != nil {
		res.RemoteLatencyOK = res.Remote.Paced.P99 <= cfg.LatencyTarget()
		rpm := res.Remote.Throughput.RequestsPerMessage()
		res.RemoteRequestsOK = rpm >= 0 && rpm <= RemoteRequestsTarget
	}
	if res.Chain != nil {
		res.ChainLatencyOK = res.Chain.Paced.P50 <= cfg.ChainLatencyTarget()
	}
	return nil
}

// statsSide is a side that runs a processor.
type statsSide interface {
	processorStats() processor.Stats
}

// commitTimer is a side that times its commits.
type commitTimer interface {
	commitTimes() commitTimes
}

// runSide runs the phases of one side.
func (b *bench) runSide(ctx context.Context, run sideRun) (*SideResult, error) {
	cfg := b.cfg
	name := run.label
	var s side
	switch run.name {
	case SideRuntime:
		s = newRuntimeSide(b, run)
	case SideRemote:
		s = newRemoteSide(b, run)
	case SideChain:
		s = newChainSide(b, run)
	default:
		s = newRawSide(b)
	}
	// the function server's counters, for a side that has one
	httpNow := func() *httpCounts { return nil }
	if rs, ok := s.(*remoteSide); ok {
		httpNow = func() *httpCounts { c := rs.http(); return &c }
	}
	// messages delivered in their sender's transaction, for a processor
	localNow := func() int64 { return -1 }
	commitsNow := func() commitTimes { return commitTimes{n: -1} }
	if ps, ok := s.(statsSide); ok {
		localNow = func() int64 { return ps.processorStats().Local }
	}
	if ct, ok := s.(commitTimer); ok {
		commitsNow = ct.commitTimes
	}
	in, out := s.topics()
	if err := createTopics(b.client, cfg.Partitions, in, out); err != nil {
		return nil, err
	}
	rd, err := newReader(b.client, out, run.name != SideRaw)
	if err != nil {
		return nil, err
	}
	defer rd.close()

	load0 := loadAverage()
	fmt.Fprintf(b.out, "%s: starting (load average %s)\n", name, loadText(load0))
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.stop()
		}
	}()
	sr := &SideResult{Name: run.name, Label: run.label, Threads: run.threads, LoadBefore: load0}
	httpStart := httpNow()

	// warm-up
	rd.expect(phaseWarmup, cfg.Warmup)
	if _, err := b.load(ctx, in, phaseWarmup, cfg.Warmup, loaderName(run, "warmup")); err != nil {
		return nil, err
	}
	if _, err := b.wait(ctx, rd, s, phaseWarmup, name+" warm-up", nil); err != nil {
		return nil, err
	}
	sr.Inputs += cfg.Warmup

	// throughput
	fmt.Fprintf(b.out, "%s: loading %s records in one transaction\n", name, num(cfg.Messages))
	rd.expect(phaseLoad, cfg.Messages)
	var prof *os.File
	startProfile := func() {
		if cfg.CPUProfile == "" || cfg.ProfileSide != run.name || b.profiled {
			return
		}
		b.profiled = true
		f, err := os.Create(cfg.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(b.out, "%s: no CPU profile: %v\n", name, err)
			return
		}
		prof = f
	}
	offs0 := b.offsets(s.written())
	commits0 := s.commits()
	var cpu0, bcpu0, mcpu0 time.Duration
	var http0 *httpCounts
	var local0 int64
	var ct0 commitTimes
	t0, err := b.loadWith(ctx, in, phaseLoad, cfg.Messages, loaderName(run, "load"), func() {
		// right before the commit that makes the records visible
		startProfile()
		cpu0, bcpu0, mcpu0 = processCPU(), childrenCPU(), machineCPU()
		http0 = httpNow()
		local0 = localNow()
		ct0 = commitsNow()
	})
	if err != nil {
		return nil, err
	}
	t1, err := b.wait(ctx, rd, s, phaseLoad, name, nil)
	cpu1, bcpu1, mcpu1 := processCPU(), childrenCPU(), machineCPU()
	http1 := httpNow()
	local1 := localNow()
	ct1 := commitsNow()
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
		fmt.Fprintf(b.out, "%s: CPU profile of the throughput phase written to %s\n", name, cfg.CPUProfile)
	}
	if err != nil {
		return nil, err
	}
	sr.Inputs += cfg.Messages
	sr.Throughput = phaseFigures(cfg.Messages, t1.Sub(t0), cpu1-cpu0, brokerDelta(bcpu0, bcpu1), s.commits()-commits0, b.offsets(s.written()), offs0)
	sr.Throughput.MachineCPU = brokerDelta(mcpu0, mcpu1)
	sr.Throughput.HTTP = httpDelta(http0, http1)
	sr.Throughput.Local = localDelta(local0, local1)
	sr.Throughput.CommitTime, sr.Throughput.CommitMax = commitDelta(ct0, ct1)

	// latency
	n := cfg.pacedMessages()
	fmt.Fprintf(b.out, "%s: sending %s records/s for %v\n", name, num(cfg.Rate), cfg.PacedDuration)
	rd.expect(phasePaced, n)
	offs0 = b.offsets(s.written())
	commits0 = s.commits()
	cpu0, bcpu0, mcpu0 = processCPU(), childrenCPU(), machineCPU()
	http0 = httpNow()
	local0 = localNow()
	ct0 = commitsNow()
	p0 := time.Now()
	pc, err := b.startPaced(ctx, in, n)
	if err != nil {
		return nil, err
	}
	p1, err := b.wait(ctx, rd, s, phasePaced, name+" latency", pc.sent.Load)
	cpu1, bcpu1, mcpu1 = processCPU(), childrenCPU(), machineCPU()
	http1 = httpNow()
	local1 = localNow()
	ct1 = commitsNow()
	if perr := pc.wait(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	sr.Inputs += n
	sr.Paced = phaseFigures(n, p1.Sub(p0), cpu1-cpu0, brokerDelta(bcpu0, bcpu1), s.commits()-commits0, b.offsets(s.written()), offs0)
	sr.Paced.MachineCPU = brokerDelta(mcpu0, mcpu1)
	sr.Paced.P50, sr.Paced.P99, sr.Paced.Max = rd.latencies(phasePaced)
	sr.Paced.HTTP = httpDelta(http0, http1)
	sr.Paced.Local = localDelta(local0, local1)
	sr.Paced.CommitTime, sr.Paced.CommitMax = commitDelta(ct0, ct1)

	sr.HTTP = httpDelta(httpStart, httpNow())

	// stop, then wait for stray records (duplicates) before checking
	stopped = true
	if err := s.stop(); err != nil {
		return nil, fmt.Errorf("bench: %s: stop: %w", name, err)
	}
	rd.quiet(500*time.Millisecond, 5*time.Second)
	sr.Outputs = rd.total()
	checks, err := rd.verify(name, sr.Inputs)
	if err != nil {
		return nil, err
	}
	sr.Checks = checks
	sr.LoadAfter = loadAverage()
	fmt.Fprintf(b.out, "%s: done: %s records/s, latency p50 %v p99 %v (load average %s)\n\n", name, num(int(sr.Throughput.PerSecond)), ms(sr.Paced.P50), ms(sr.Paced.P99), loadText(sr.LoadAfter))
	return sr, nil
}

func phaseFigures(n int, elapsed, cpu, brokerCPU time.Duration, commits int64, after, before []TopicOffsets) Phase {
	p := Phase{Messages: n, Elapsed: elapsed, CPU: cpu, BrokerCPU: brokerCPU, Commits: commits}
	if elapsed > 0 {
		p.PerSecond = float64(n) / elapsed.Seconds()
	}
	for i := range after {
		o := after[i]
		if i < len(before) {
			o.Delta -= before[i].Delta
		}
		p.Offsets = append(p.Offsets, o)
	}
	return p
}

// httpDelta returns what the function server served between two readings
// of its counters; nil without a function server.
func httpDelta(before, after *httpCounts) *HTTPFigures {
	if before == nil || after == nil {
		return nil
	}
	return &HTTPFigures{
		Requests:    after.requests - before.requests,
		Connections: after.conns - before.conns,
		Calls:       after.calls - before.calls,
	}
}

// commitDelta returns the mean and the longest commit between two
// readings of a commitClock; -1, -1 if there was no commit.
func commitDelta(before, after commitTimes) (mean, longest time.Duration) {
	n := after.n - before.n
	if before.n < 0 || n <= 0 {
		return -1, -1
	}
	return (after.total - before.total) / time.Duration(n), after.max
}

// localDelta is after - before, -1 if either is unknown.
func localDelta(before, after int64) int64 {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}

// loaderName names the loader's transactional id for a phase of a run.
func loaderName(run sideRun, phase string) string {
	return fmt.Sprintf("%s-t%d-%s", run.name, run.threads, phase)
}

// threadsList describes the thread counts of the processor sides.
func threadsList(cfg Config) string {
	var parts []string
	for _, n := range cfg.Threads {
		parts = append(parts, strconv.Itoa(n))
	}
	s := strings.Join(parts, ", ")
	if len(cfg.Threads) > 1 {
		s += " (the runtime side runs once with each; the remote and chain sides with " + strconv.Itoa(cfg.Threads[0]) + ")"
	}
	return s
}

// describeSides names what the bench compares, for its first line.
func describeSides(cfg Config) string {
	var parts []string
	for _, s := range cfg.Sides {
		switch s {
		case SideRuntime:
			parts = append(parts, "function bench/counter embedded in the runtime")
		case SideRemote:
			parts = append(parts, "bench/counter as a remote function (StateFun Go SDK over HTTP)")
		case SideChain:
			parts = append(parts, "a chain of "+describeChain(cfg.ChainLength))
		case SideRaw:
			parts = append(parts, "a raw sarama consume-transform-produce loop")
		}
	}
	return strings.Join(parts, " vs ")
}

// brokerDelta is after - before of a CPU time, -1 if either is unknown.
func brokerDelta(before, after time.Duration) time.Duration {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}

// wait waits until the reader has every record of the phase, printing a
// progress line every cfg.Progress. It fails if no record arrives for a
// minute, or the side fails. It returns when the last record arrived.
func (b *bench) wait(ctx context.Context, rd *reader, s side, ph int, label string, sent func() int64) (time.Time, error) {
	done, expect := rd.phaseDone(ph)
	tick := time.NewTicker(b.cfg.Progress)
	defer tick.Stop()
	last, lastAt := -1, time.Now()
	for {
		select {
		case <-done:
			at := rd.doneAt(ph)
			fmt.Fprintf(b.out, "%s: %s/%s messages\n", label, num(expect), num(expect))
			return at, nil
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case err := <-s.failed():
			return time.Time{}, fmt.Errorf("bench: %s: %w", label, err)
		case <-tick.C:
			got := rd.count(ph)
			line := fmt.Sprintf("%s: %s/%s messages", label, num(got), num(expect))
			if sent != nil {
				line += fmt.Sprintf(" (%s sent)", num(int(sent())))
			}
			fmt.Fprintln(b.out, line)
			if got != last {
				last, lastAt = got, time.Now()
			} else if time.Since(lastAt) > time.Minute {
				return time.Time{}, fmt.Errorf("bench: %s: stalled at %d of %d output records for a minute", label, got, expect)
			}
		}
	}
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
