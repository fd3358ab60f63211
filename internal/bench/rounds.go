package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Medians are the medians of a run's figures over its rounds. A ratio's
// median is the median of the rounds' ratios, each taken between two sides
// of the same round; a figure that did not run is 0 (-1 for
// RemoteRequests).
type Medians struct {
	// PerSecond is the median messages/s of each side's throughput phase,
	// in the order of the rounds' report (the runtime's thread counts,
	// remote, chain, raw); Labels names them.
	PerSecond []float64
	Labels    []string
	// Ratio (runtime/raw), ThreadsRatio (2 threads / 1), RemoteRatio
	// (remote/embedded) and RemoteRawRatio (remote/raw) of the throughput
	// phase.
	Ratio, ThreadsRatio, RemoteRatio, RemoteRawRatio float64
	// RemoteRequests is the remote side's HTTP requests per message in the
	// throughput phase, -1 unless it ran.
	RemoteRequests float64
	// RuntimeP99 and ChainP50 are latencies of the latency phase.
	RuntimeP99, ChainP50 time.Duration
	// OthersBusy is how many CPUs the machine's other processes (neither
	// the bench nor its child broker) kept busy, over every phase of every
	// side; -1 if unknown.
	OthersBusy float64
}

// sides returns the side results of a round in report order.
func (r Result) sides() []*SideResult {
	sides := slices.Clone(r.RuntimeThreads)
	if len(sides) == 0 && r.Runtime != nil {
		sides = append(sides, r.Runtime)
	}
	for _, s := range []*SideResult{r.Remote, r.Chain, r.Raw} {
		if s != nil {
			sides = append(sides, s)
		}
	}
	return sides
}

// othersBusy returns how many CPUs the machine's other processes kept
// busy over the timed phases of the round's sides, -1 if unknown.
func (r Result) othersBusy() float64 {
	var busy, elapsed time.Duration
	for _, s := range r.sides() {
		for _, p := range []Phase{s.Throughput, s.Paced} {
			if p.MachineCPU < 0 {
				return -1
			}
			busy += max(0, p.MachineCPU-p.CPU-max(0, p.BrokerCPU))
			elapsed += p.Elapsed
		}
	}
	if elapsed <= 0 {
		return -1
	}
	return busy.Seconds() / elapsed.Seconds()
}

// median returns the median of xs (the mean of the two middle values of
// an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medians sets r.Medians from r.Rounds, and r's ratios and targets to
// those of the medians.
func (r *Result) medians() {
	if len(r.Rounds) == 0 {
		return
	}
	of := func(f func(Result) float64) float64 {
		var xs []float64
		for _, rr := range r.Rounds {
			xs = append(xs, f(rr))
		}
		return median(xs)
	}
	m := Medians{RemoteRequests: -1}
	for i, s := range r.Rounds[0].sides() {
		m.Labels = append(m.Labels, head(s, r.Config))
		m.PerSecond = append(m.PerSecond, of(func(rr Result) float64 { return rr.sides()[i].Throughput.PerSecond }))
	}
	m.Ratio = of(func(rr Result) float64 { return rr.Ratio })
	m.ThreadsRatio = of(func(rr Result) float64 { return rr.ThreadsRatio })
	m.RemoteRatio = of(func(rr Result) float64 { return rr.RemoteRatio })
	m.RemoteRawRatio = of(func(rr Result) float64 { return rr.RemoteRawRatio })
	first := r.Rounds[0]
	if first.Remote != nil {
		m.RemoteRequests = of(func(rr Result) float64 { return rr.Remote.Throughput.RequestsPerMessage() })
	}
	if first.Runtime != nil {
		m.RuntimeP99 = time.Duration(of(func(rr Result) float64 { return float64(rr.Runtime.Paced.P99) }))
	}
	if first.Chain != nil {
		m.ChainP50 = time.Duration(of(func(rr Result) float64 { return float64(rr.Chain.Paced.P50) }))
	}
	m.OthersBusy = of(func(rr Result) float64 { return rr.othersBusy() })
	r.Medians = m

	cfg := r.Config
	r.Ratio, r.ThreadsRatio, r.RemoteRatio, r.RemoteRawRatio = m.Ratio, m.ThreadsRatio, m.RemoteRatio, m.RemoteRawRatio
	r.RatioOK = m.Ratio > 0 && m.Ratio >= RatioTarget
	r.ThreadsOK = m.ThreadsRatio > 0 && m.ThreadsRatio >= ThreadsTarget
	r.RemoteRatioOK = m.RemoteRatio > 0 && m.RemoteRatio >= RemoteRatioTarget
	r.RemoteRequestsOK = m.RemoteRequests >= 0 && m.RemoteRequests <= RemoteRequestsTarget
	r.LatencyOK = first.Runtime != nil && m.RuntimeP99 <= cfg.LatencyTarget()
	r.ChainLatencyOK = first.Chain != nil && m.ChainP50 <= cfg.ChainLatencyTarget()
}

// reportRounds prints one line per round with the figures the targets are
// about, the line of their medians, and the targets against the medians.
func reportRounds(out io.Writer, res Result) {
	cfg := res.Config
	first := res.Rounds[0]
	type col struct {
		head string
		f    func(Result) string
		med  string
	}
	m := res.Medians
	var cols []col
	for i, label := range m.Labels {
		cols = append(cols, col{label + " msg/s", func(rr Result) string { return num(int(rr.sides()[i].Throughput.PerSecond + 0.5)) }, num(int(m.PerSecond[i] + 0.5))})
	}
	ratio := func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }
	if first.Runtime != nil && first.Raw != nil {
		cols = append(cols, col{first.Runtime.Label + "/raw", func(rr Result) string { return ratio(rr.Ratio) }, ratio(m.Ratio)})
	}
	if m.ThreadsRatio > 0 {
		cols = append(cols, col{"2 threads/1", func(rr Result) string { return ratio(rr.ThreadsRatio) }, ratio(m.ThreadsRatio)})
	}
	if first.Remote != nil && first.Runtime != nil {
		cols = append(cols, col{"remote/embedded", func(rr Result) string { return ratio(rr.RemoteRatio) }, ratio(m.RemoteRatio)})
	}
	if first.Remote != nil {
		cols = append(cols, col{"remote HTTP req/msg", func(rr Result) string { return ratioOrDash(rr.Remote.Throughput.RequestsPerMessage(), 3) }, ratioOrDash(m.RemoteRequests, 3)})
	}
	if first.Runtime != nil {
		cols = append(cols, col{first.Runtime.Label + " p99", func(rr Result) string { return ms(rr.Runtime.Paced.P99) }, ms(m.RuntimeP99)})
	}
	if first.Chain != nil {
		cols = append(cols, col{"chain p50", func(rr Result) string { return ms(rr.Chain.Paced.P50) }, ms(m.ChainP50)})
	}
	cols = append(cols,
		col{"others' CPUs busy", func(rr Result) string { return ratioOrDash(rr.othersBusy(), 2) }, ratioOrDash(m.OthersBusy, 2)},
		col{"load start -> end", func(rr Result) string {
			ss := rr.sides()
			return loadText(ss[0].LoadBefore) + " -> " + loadText(ss[len(ss)-1].LoadAfter)
		}, ""},
	)

	rows := [][]string{{"round"}}
	for _, c := range cols {
		rows[0] = append(rows[0], c.head)
	}
	for i, rr := range res.Rounds {
		row := []string{strconv.Itoa(i + 1)}
		for _, c := range cols {
			row = append(row, c.f(rr))
		}
		rows = append(rows, row)
	}
	med := []string{"median"}
	for _, c := range cols {
		med = append(med, c.med)
	}
	rows = append(rows, med)

	fmt.Fprintf(out, "SUMMARY of %d rounds (the sides ran in turn: %s; then again)\n", len(res.Rounds), strings.Join(m.Labels, ", "))
	fmt.Fprintf(out, "broker: %s; commit interval %v (or %s records); throughput phase %s records, latency phase %s records/s for %v\n",
		res.Broker, cfg.CommitInterval, num(cfg.CommitCount), num(cfg.Messages), num(cfg.Rate), cfg.PacedDuration)
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		line := " "
		for i, c := range r {
			line += "  " + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + c
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out, "Targets against the medians (a ratio's median is that of the rounds' ratios):")
	if first.Runtime != nil && first.Raw != nil {
		fmt.Fprintf(out, "  ratio %s/raw messages/s: %.2f   target >= %.2f: %s\n", first.Runtime.Label, m.Ratio, RatioTarget, passMiss(res.RatioOK))
	}
	if m.ThreadsRatio > 0 {
		fmt.Fprintf(out, "  ratio runtime 2 threads / 1 thread messages/s: %.2f   target >= %.2f: %s\n", m.ThreadsRatio, ThreadsTarget, passMiss(res.ThreadsOK))
	}
	if first.Remote != nil && first.Runtime != nil {
		fmt.Fprintf(out, "  ratio remote/embedded messages/s: %.2f   target >= %.2f: %s\n", m.RemoteRatio, RemoteRatioTarget, passMiss(res.RemoteRatioOK))
	}
	if first.Remote != nil {
		fmt.Fprintf(out, "  remote HTTP requests/message: %s   target <= %.2f: %s\n", ratioOrDash(m.RemoteRequests, 3), RemoteRequestsTarget, passMiss(res.RemoteRequestsOK))
	}
	if first.Runtime != nil {
		fmt.Fprintf(out, "  %s latency p99: %s   target <= %s (%d x commit interval): %s\n", first.Runtime.Label, ms(m.RuntimeP99), ms(cfg.LatencyTarget()), LatencyTargetFactor, passMiss(res.LatencyOK))
	}
	if first.Chain != nil {
		fmt.Fprintf(out, "  chain latency p50: %s   target <= %s (%.1f x commit interval): %s\n", ms(m.ChainP50), ms(cfg.ChainLatencyTarget()), ChainLatencyTargetFactor, passMiss(res.ChainLatencyOK))
	}
}
