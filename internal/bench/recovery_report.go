package bench

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/stateloop/stateloop/processor"
)

// reportRecovery prints the figures of the recovery bench.
func reportRecovery(out io.Writer, res Result) {
	cfg, r := res.Config, res.Recovery
	fmt.Fprintln(out, "RESULTS")
	fmt.Fprintf(out, "broker: %s; %d partitions\n", res.Broker, cfg.Partitions)
	fmt.Fprintf(out, "commit interval: %v (or %s records); instances of the pause runs: session timeout %v, transaction timeout %v; no standbys\n\n",
		cfg.CommitInterval, num(cfg.CommitCount), orDefault(cfg.SessionTimeout, defaultSessionTimeout), orDefault(cfg.TransactionTimeout, processor.DefaultTransactionTimeout))

	loads := func(a, b float64) string { return loadText(a) + " -> " + loadText(b) }
	rawMean := (r.RawBefore.PerSecond() + r.RawAfter.PerSecond()) / 2
	ratio := 0.0
	if rawMean > 0 {
		ratio = r.Cold.RebuildPerSecond() / rawMean
	}
	printTable(out, fmt.Sprintf("Local state of %s addresses (table records written directly, one transaction: %s records/s)",
		num(r.Addresses), num(int(r.Fill.PerSecond()))),
		[]string{"", "figure", "goal", "load average"},
		[][]string{
			{"raw read_committed read of the table (sarama consumer), before", rate(r.RawBefore), "", loads(r.RawBefore.LoadBefore, r.RawBefore.LoadAfter)},
			{"recovery's reader alone (kafkaread.ReadCommitted, a goroutine per partition, one client), no store", rate(r.Fetch), "", loads(r.Fetch.LoadBefore, r.Fetch.LoadAfter)},
			{"cold rebuild into an empty store: records/s (run to last partition recovered)",
				fmt.Sprintf("%s (%s records in %v)", num(int(r.Cold.RebuildPerSecond())), num(int(r.Cold.Records)), r.Cold.Recovered.Round(time.Millisecond)),
				fmt.Sprintf(">= %s/s %s", num(RebuildGoal), passMiss(r.Cold.RebuildPerSecond() >= RebuildGoal)), loads(r.Cold.LoadBefore, r.Cold.LoadAfter)},
			{"raw read_committed read of the table (sarama consumer), after", rate(r.RawAfter), "", loads(r.RawAfter.LoadBefore, r.RawAfter.LoadAfter)},
			{"ratio cold rebuild / raw read (mean of before and after)", strconv.FormatFloat(ratio, 'f', 2, 64), "", ""},
			{"cold rebuild net of the restart's fixed cost: records / (cold - restart, run to last partition recovered)", netRebuild(r), "", ""},
			{"cold start: ready, serving (every partition's first output read)",
				r.Cold.Ready.Round(time.Millisecond).String() + ", " + r.Cold.Serving.Round(time.Millisecond).String(), "", ""},
			{"restart on the local store: last partition recovered", r.Warm.Recovered.Round(time.Millisecond).String(), "", ""},
			{"restart on the local store: ready, serving",
				r.Warm.Ready.Round(time.Millisecond).String() + ", " + r.Warm.Serving.Round(time.Millisecond).String(),
				fmt.Sprintf("< %v %s", RestartGoal, passMiss(r.Warm.Serving < RestartGoal)), loads(r.Warm.LoadBefore, r.Warm.LoadAfter)},
			{"restart on the local store: changelog records read", num(int(r.Warm.Records)), "", ""},
			{"local store on disk (leveldb, snappy) after the restart: total, per address",
				fmt.Sprintf("%s, %s", mibSigned(r.Warm.StoreBytes), bytesPer(float64(r.Warm.StoreBytes)/float64(max(r.Addresses, 1)))), "", ""},
		})
	fmt.Fprintln(out)

	var rows [][]string
	for _, in := range r.Instances {
		rel := "1.00"
		if base := r.Instances[0].Phase.PerSecond(); base > 0 {
			rel = strconv.FormatFloat(in.Phase.PerSecond()/base, 'f', 2, 64)
		}
		rows = append(rows, []string{strconv.Itoa(in.Instances), num(int(in.Phase.PerSecond())), rel, loads(in.Phase.LoadBefore, in.Phase.LoadAfter)})
	}
	printTable(out, fmt.Sprintf("Instances (child processes of this machine, one stream thread each): %s records pre-loaded in one transaction", num(cfg.Messages)),
		[]string{"instances", "messages/s", "ratio to 1 instance", "load average"}, rows)
	fmt.Fprintln(out)

	rows = nil
	for _, p := range []*PauseRun{r.Kill, r.Bounce} {
		if p == nil {
			continue
		}
		restart, goal := "-", "-"
		if p == r.Bounce {
			restart = p.Restart.Round(time.Millisecond).String()
			goal = fmt.Sprintf("< %v %s", PauseGoal, passMiss(p.Pause < PauseGoal))
		}
		rows = append(rows, []string{p.Label, p.Steady.Round(time.Millisecond).String(),
			fmt.Sprintf("%v (partition %d)", p.Pause.Round(time.Millisecond), p.Partition), strconv.Itoa(p.PausedOver1s),
			restart, p.MaxLatency.Round(time.Millisecond).String(), goal, loads(p.LoadBefore, p.LoadAfter)})
	}
	printTable(out, fmt.Sprintf("Pauses: %s records/s through 3 instances (local stores on disk), one killed after %v; gap = time between two output records of one partition read (read_committed)",
		num(cfg.Rate), cfg.RecoverySteady),
		[]string{"", "longest gap before the kill", "longest gap from the kill on", "partitions paused > 1s", "restart to ready", "max latency", "goal", "load average"}, rows)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "checks:")
	for _, in := range r.Instances {
		for _, c := range in.Checks {
			fmt.Fprintf(out, "  %d instances: %s\n", in.Instances, c)
		}
	}
	for _, p := range []*PauseRun{r.Kill, r.Bounce} {
		if p != nil {
			for _, c := range p.Checks {
				fmt.Fprintf(out, "  %s: %s\n", p.Label, c)
			}
		}
	}
}

// netRebuild is the cold rebuild's records over the time it took more
// than the restart on the local store, which does the same but read the
// records (group join, store opening, offset queries).
func netRebuild(r *RecoveryResult) string {
	extra := r.Cold.Recovered - r.Warm.Recovered
	if extra <= 0 {
		return "-"
	}
	return fmt.Sprintf("%s records/s (%v more than the restart)", num(int(float64(r.Cold.Records-r.Warm.Records)/extra.Seconds())), extra.Round(time.Millisecond))
}

// defaultSessionTimeout is the processor's default session timeout
// (processor.WithSessionTimeout).
const defaultSessionTimeout = 10 * time.Second

// orDefault returns d, or def if d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func rate(r Rate) string {
	return fmt.Sprintf("%s records/s (%s in %v)", num(int(r.PerSecond())), num(r.Records), r.Took.Round(time.Millisecond))
}
