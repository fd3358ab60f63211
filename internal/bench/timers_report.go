package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// reportTimers prints the figures of the delayed-messages bench.
func reportTimers(out io.Writer, res Result) {
	cfg, t := res.Config, res.Timers
	fmt.Fprintln(out, "RESULTS")
	fmt.Fprintf(out, "broker: %s\n", res.Broker)
	fmt.Fprintf(out, "commit interval: %v (or %s records)\n\n", cfg.CommitInterval, num(cfg.CommitCount))

	mem := func(label string, f func(m Memory) string) []string {
		return []string{label, f(t.Stored), f(t.Burst)}
	}
	printTable(out, "Pending timers: heap after runtime.GC (whole process), local stores on disk; each set scheduled in two halves",
		[]string{"", fmt.Sprintf("in the store (due in %v-%v)", storedMinDelay, storedMaxDelay), "in memory (due at one moment, seconds ahead)"},
		[][]string{
			mem("timers", func(m Memory) string { return num(m.Timers) }),
			mem("heap in use: before, half, after", func(m Memory) string {
				return mib(m.Before.Inuse) + ", " + mib(m.Half.Inuse) + ", " + mib(m.After.Inuse)
			}),
			mem("heap in use per timer: all, 2nd half", func(m Memory) string {
				a, h := m.PerTimer()
				return bytesPer(a) + ", " + bytesPer(h)
			}),
			mem("timers per GiB of heap: all, 2nd half", func(m Memory) string {
				a, h := m.PerTimer()
				return perGiBString(a) + ", " + perGiBString(h)
			}),
			mem("live heap per timer: all, 2nd half", func(m Memory) string {
				a, h := m.AllocPerTimer()
				return bytesPer(a) + ", " + bytesPer(h)
			}),
			mem("local store on disk per timer", func(m Memory) string { return bytesPer(m.DiskPerTimer()) }),
			mem("local store on disk: before, after", func(m Memory) string { return mibSigned(m.DiskBefore) + ", " + mibSigned(m.DiskAfter) }),
			mem("scheduled/s (load commit to processor commit)", func(m Memory) string { return num(int(m.Schedule.PerSecond + 0.5)) }),
			mem("CPU/timer scheduled, this process", func(m Memory) string { return us(m.Schedule.CPUPerMessage()) }),
			mem("CPU/timer scheduled, broker process", func(m Memory) string { return us(m.Schedule.BrokerCPUPerMessage()) }),
		})
	fmt.Fprintf(out, "the burst was scheduled and measured %v before its due time\n\n", t.Lead.Round(time.Millisecond))

	phases := []Phase{t.Fire, t.Plain, t.Send}
	row := func(label string, f func(p Phase) string) []string {
		r := []string{label}
		for _, p := range phases {
			r = append(r, f(p))
		}
		return r
	}
	printTable(out, fmt.Sprintf("Firing: %s timers due at one moment, timed from the due time to the last egress record read (read_committed); baselines: as many plain messages to the same function, pre-loaded in one transaction, timed from its commit",
		num(cfg.TimersBurst)),
		[]string{"", "timers fired", "plain (ingress)", "plain (ctx.Send)"},
		[][]string{
			row("messages/s", func(p Phase) string { return num(int(p.PerSecond + 0.5)) }),
			row("elapsed", func(p Phase) string { return p.Elapsed.Round(time.Millisecond).String() }),
			row("transactions", func(p Phase) string { return num(int(p.Commits)) }),
			row("CPU/message, this process", func(p Phase) string { return us(p.CPUPerMessage()) }),
			row("CPU/message, broker process", func(p Phase) string { return us(p.BrokerCPUPerMessage()) }),
		})
	fmt.Fprintf(out, "ratio fired/plain (ingress) messages/s: %.2f; fired/plain (ctx.Send): %.2f\n", t.FireRatio, t.FireSendRatio)
	fl := t.FireLateness
	fmt.Fprintf(out, "burst: first egress record %s after the due time; lateness p50 %s, p99 %s, max %s (sink invoked: p50 %s, p99 %s, max %s); %s timers fired\n",
		ms(t.FirstAfter), ms(fl.Egress.P50), ms(fl.Egress.P99), ms(fl.Egress.Max),
		ms(fl.Delivery.P50), ms(fl.Delivery.P99), ms(fl.Delivery.Max), num(int(t.TimersFired)))
	fmt.Fprintf(out, "heap in use after the burst fired: %s (%s before it was scheduled)\n\n", mib(t.Retained.Inuse), mib(t.Burst.Before.Inuse))

	ci := cfg.CommitInterval
	inCI := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(ci), 'f', 2, 64)
	}
	l := t.Lateness
	rows := func(label string, p Percentiles) [][]string {
		return [][]string{
			{label, num(p.N), ms(p.P50), ms(p.P99), ms(p.Max)},
			{"  in commit intervals", "", inCI(p.P50), inCI(p.P99), inCI(p.Max)},
		}
	}
	var lrows [][]string
	lrows = append(lrows, rows("egress record read (read_committed), all", l.Egress)...)
	lrows = append(lrows, rows(fmt.Sprintf("egress record read, delay >= %v", l.LongDelay), l.LongEgress)...)
	lrows = append(lrows, rows("sink invoked, all", l.Delivery)...)
	lrows = append(lrows, rows(fmt.Sprintf("sink invoked, delay >= %v", l.LongDelay), l.LongDelivery)...)
	printTable(out, fmt.Sprintf("Lateness: %s delayed messages/s for %v, delays uniform in 0-%v; lateness = arrival minus due time",
		num(cfg.TimersRate), cfg.TimersDuration, cfg.TimersMaxDelay),
		[]string{"", "messages", "p50", "p99", "max"}, lrows)
	fmt.Fprintf(out, "transactions: %s; CPU/message, this process: %s (the process idles between messages)\n", num(int(t.Paced.Commits)), us(t.Paced.CPUPerMessage()))
	fmt.Fprintf(out, "a message with a delay under %v can be due before the transaction that scheduled it commits, and is sent only then\n", l.LongDelay)
	bound := ci + timerCheck
	fmt.Fprintf(out, "sink invoked p99, delay >= %v: %s   docs/timers.md: late by up to about one commit interval + the 10ms check (%s): %s\n\n",
		l.LongDelay, ms(l.LongDelivery.P99), ms(bound), passMiss(l.LongDelivery.P99 <= bound))

	fmt.Fprintln(out, "Checks (exactly-once, never early):")
	for _, c := range t.Checks {
		fmt.Fprintf(out, "  %s\n", c)
	}
	fmt.Fprintln(out, "Heap figures are of the whole process (runtime, bench reader and loader): read them as differences. \"2nd half\" is the cost of the second half of the timers alone, without fixed costs such as leveldb's memtables and caches.")
}

// timerCheck is how often the processor looks for due timers
// (processor/timers.go).
const timerCheck = 10 * time.Millisecond

// printTable prints rows under a title, the first column left-aligned and
// the others right-aligned.
func printTable(out io.Writer, title string, heads []string, rows [][]string) {
	fmt.Fprintln(out, title)
	all := append([][]string{heads}, rows...)
	widths := make([]int, len(heads))
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

// mib formats bytes in MiB with one decimal.
func mib(b uint64) string {
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

// mibSigned is mib for a size that may be unknown (-1).
func mibSigned(b int64) string {
	if b < 0 {
		return "-"
	}
	return mib(uint64(b))
}

// bytesPer formats bytes per timer; "-" if unknown (negative means a
// reading went down, printed as it is).
func bytesPer(b float64) string {
	if b == -1 {
		return "-"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + " B"
}

// perGiBString formats timers per GiB at b bytes per timer.
func perGiBString(b float64) string {
	n := perGiB(b)
	switch {
	case n < 0:
		return "-"
	case n >= 1e6:
		return strconv.FormatFloat(n/1e6, 'f', 1, 64) + " million"
	default:
		return num(int(n))
	}
}
