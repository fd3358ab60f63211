package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// report prints the figures of a run.
func report(out io.Writer, res Result) {
	cfg := res.Config
	sides := res.sides()
	var heads []string
	for _, s := range sides {
		heads = append(heads, head(s, cfg))
	}
	table := func(title string, rows [][]string) {
		fmt.Fprintln(out, title)
		all := append([][]string{append([]string{""}, heads...)}, rows...)
		widths := make([]int, len(all[0]))
		for _, r := range all {
			for i, c := range r {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
		for _, r := range all {
			line := "  " + r[0] + strings.Repeat(" ", widths[0]-utf8.RuneCountInString(r[0]))
			for i, c := range r[1:] {
				line += "   " + strings.Repeat(" ", widths[i+1]-utf8.RuneCountInString(c)) + c
			}
			fmt.Fprintln(out, line)
		}
	}
	row := func(label string, f func(s *SideResult) string) []string {
		r := []string{label}
		for _, s := range sides {
			r = append(r, f(s))
		}
		return r
	}
	phaseRows := func(get func(s *SideResult) Phase) [][]string {
		rows := [][]string{
			row("messages/s", func(s *SideResult) string { return num(int(get(s).PerSecond + 0.5)) }),
			row("elapsed", func(s *SideResult) string { return get(s).Elapsed.Round(time.Millisecond).String() }),
			row("transactions", func(s *SideResult) string { return num(int(get(s).Commits)) }),
			row("messages/transaction", func(s *SideResult) string {
				p := get(s)
				if p.Commits == 0 {
					return "-"
				}
				return num(int(int64(p.Messages) / p.Commits))
			}),
			row("CPU/message, this process", func(s *SideResult) string { return us(get(s).CPUPerMessage()) }),
			row("CPU/message, broker process", func(s *SideResult) string { return us(get(s).BrokerCPUPerMessage()) }),
			row("CPUs busy: this process / broker / others", func(s *SideResult) string { return coresBusy(get(s)) }),
			row("log entries written/message", func(s *SideResult) string { return offsetsPerMessage(get(s)) }),
			row("commit, mean / longest", func(s *SideResult) string {
				p := get(s)
				if p.CommitTime < 0 {
					return "-"
				}
				return ms(p.CommitTime) + " / " + ms(p.CommitMax)
			}),
		}
		if res.Chain != nil {
			rows = append(rows, row("local deliveries/message", func(s *SideResult) string { return ratioOrDash(get(s).LocalPerMessage(), 2) }))
		}
		if res.Remote == nil {
			return rows
		}
		return append(rows,
			row("HTTP requests/message", func(s *SideResult) string { return ratioOrDash(get(s).RequestsPerMessage(), 3) }),
			row("calls/HTTP request (batch)", func(s *SideResult) string { return ratioOrDash(get(s).CallsPerRequest(), 1) }),
			row("HTTP connections opened", func(s *SideResult) string {
				if h := get(s).HTTP; h != nil {
					return num(int(h.Connections))
				}
				return "-"
			}),
		)
	}

	fmt.Fprintln(out, "RESULTS")
	fmt.Fprintf(out, "broker: %s\n", res.Broker)
	fmt.Fprintf(out, "commit interval: %v (or %s records)\n\n", cfg.CommitInterval, num(cfg.CommitCount))
	rows := append(phaseRows(func(s *SideResult) Phase { return s.Throughput }),
		row("load average, side start -> end", func(s *SideResult) string { return loadText(s.LoadBefore) + " -> " + loadText(s.LoadAfter) }))
	table(fmt.Sprintf("Throughput: %s records pre-loaded in one transaction (%s ids); timed from its commit to the last output record read (read_committed)",
		num(cfg.Messages), num(cfg.IDs)), rows)
	if res.Runtime != nil && res.Raw != nil {
		fmt.Fprintf(out, "ratio %s/raw messages/s: %.2f   target >= %.2f: %s\n", res.Runtime.Label, res.Ratio, RatioTarget, passMiss(res.RatioOK))
		for _, s := range res.RuntimeThreads[1:] {
			fmt.Fprintf(out, "ratio %s/raw messages/s: %.2f\n", s.Label, s.Throughput.PerSecond/res.Raw.Throughput.PerSecond)
		}
	}
	for _, s := range res.RuntimeThreads[min(1, len(res.RuntimeThreads)):] {
		first := res.RuntimeThreads[0]
		line := fmt.Sprintf("ratio runtime %s / %s messages/s: %.2f", threadsText(s.Threads), threadsText(first.Threads), s.Throughput.PerSecond/first.Throughput.PerSecond)
		if first.Threads == 1 && s.Threads == 2 {
			line += fmt.Sprintf("   target >= %.2f: %s", ThreadsTarget, passMiss(res.ThreadsOK))
		}
		fmt.Fprintln(out, line)
	}
	if res.Remote != nil && res.Runtime != nil {
		fmt.Fprintf(out, "ratio remote/embedded messages/s: %.2f   target >= %.2f: %s\n", res.RemoteRatio, RemoteRatioTarget, passMiss(res.RemoteRatioOK))
	}
	if res.Remote != nil && res.Raw != nil {
		fmt.Fprintf(out, "ratio remote/raw messages/s: %.2f\n", res.RemoteRawRatio)
	}
	if res.Remote != nil {
		fmt.Fprintf(out, "remote HTTP requests/message: %s   target <= %.2f: %s\n", ratioOrDash(res.Remote.Throughput.RequestsPerMessage(), 3), RemoteRequestsTarget, passMiss(res.RemoteRequestsOK))
	}
	fmt.Fprintln(out)
	rows = [][]string{
		row("latency p50", func(s *SideResult) string { return ms(s.Paced.P50) }),
		row("latency p99", func(s *SideResult) string { return ms(s.Paced.P99) }),
		row("latency max", func(s *SideResult) string { return ms(s.Paced.Max) }),
	}
	rows = append(rows, phaseRows(func(s *SideResult) Phase { return s.Paced })...)
	table(fmt.Sprintf("Latency: %s records/s for %v; from the send of an input record to its output record read by a read_committed consumer",
		num(cfg.Rate), cfg.PacedDuration), rows)
	if res.Runtime != nil {
		fmt.Fprintf(out, "runtime latency p99: %s   target <= %s (%d x commit interval %v): %s\n",
			ms(res.Runtime.Paced.P99), ms(cfg.LatencyTarget()), LatencyTargetFactor, cfg.CommitInterval, passMiss(res.LatencyOK))
	}
	if res.Remote != nil {
		fmt.Fprintf(out, "remote latency p99: %s   runtime's target <= %s: %s\n", ms(res.Remote.Paced.P99), ms(cfg.LatencyTarget()), passMiss(res.RemoteLatencyOK))
	}
	if res.Chain != nil {
		fmt.Fprintf(out, "chain latency p50: %s   target <= %s (%.1f x commit interval %v): %s\n",
			ms(res.Chain.Paced.P50), ms(cfg.ChainLatencyTarget()), ChainLatencyTargetFactor, cfg.CommitInterval, passMiss(res.ChainLatencyOK))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Checks (exactly-once):")
	for i, s := range sides {
		for _, c := range s.Checks {
			fmt.Fprintf(out, "  %s: %s\n", heads[i], c)
		}
	}
	fmt.Fprintln(out, "CPU/message is the user+system CPU time of the process divided by the messages of the phase; it includes the bench's own producer and reader.")
	if res.Remote != nil && res.Remote.HTTP != nil {
		h := res.Remote.HTTP
		fmt.Fprintf(out, "Function server, all phases of the remote side: %s HTTP requests on %s connections (kept alive) for %s calls of %s input records\n",
			num(int(h.Requests)), num(int(h.Connections)), num(int(h.Calls)), num(res.Remote.Inputs))
	}
	if res.Remote != nil {
		fmt.Fprintln(out, "The remote side's function server (net/http and the StateFun Go SDK) runs in this process: its CPU time is in the remote side's CPU/message, this process.")
		fmt.Fprintln(out, "HTTP requests/message counts the requests the function server received (one per batch for an address, at most one in flight per address).")
	}
}

// coresBusy is the CPU time of the process, of the broker and of the
// machine's other processes per second of the phase: how many CPUs each
// kept busy on average.
func coresBusy(p Phase) string {
	if p.Elapsed <= 0 {
		return "-"
	}
	f := func(d time.Duration) string {
		if d < 0 {
			return "-"
		}
		return strconv.FormatFloat(d.Seconds()/p.Elapsed.Seconds(), 'f', 2, 64)
	}
	others := time.Duration(-1)
	if p.MachineCPU >= 0 {
		others = max(0, p.MachineCPU-p.CPU-max(0, p.BrokerCPU))
	}
	return f(p.CPU) + " / " + f(p.BrokerCPU) + " / " + f(others)
}

// head names a side in the report's tables and checks.
func head(s *SideResult, cfg Config) string {
	switch s.Name {
	case SideRemote:
		return "remote (HTTP)"
	case SideChain:
		return fmt.Sprintf("chain (%d functions)", cfg.ChainLength)
	case SideRaw:
		return "raw sarama"
	}
	return s.Label
}

// ratioOrDash formats f with prec decimals; "-" if it is negative (unknown).
func ratioOrDash(f float64, prec int) string {
	if f < 0 {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

func offsetsPerMessage(p Phase) string {
	if p.Messages == 0 {
		return "-"
	}
	// topics of one role (the chain's changelogs) add up
	var roles []string
	byRole := map[string]int64{}
	for _, o := range p.Offsets {
		if o.Delta < 0 {
			return "?"
		}
		if _, ok := byRole[o.Role]; !ok {
			roles = append(roles, o.Role)
		}
		byRole[o.Role] += o.Delta
	}
	var total float64
	var parts []string
	for _, r := range roles {
		f := float64(byRole[r]) / float64(p.Messages)
		total += f
		parts = append(parts, fmt.Sprintf("%s %.2f", r, f))
	}
	if len(parts) == 1 {
		return fmt.Sprintf("%.2f", total)
	}
	return fmt.Sprintf("%.2f (%s)", total, strings.Join(parts, " + "))
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// num formats n with thousands separators: 100,000.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ms formats a latency in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// us formats a CPU time per message in microseconds; "-" if unknown.
func us(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + "µs"
}
