package smoke

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Result of a smoke run, passed or not.
type Result struct {
	App    string
	Broker string
	Seed   int64
	IDs    int
	// Produced commands, Acked by the broker (only these are counted) and
	// failed; ProduceError is the last produce error.
	Produced, Acked, ProduceErrors int
	ProduceError                   error
	// Increments is the sum of the expected counts.
	Increments int64
	Workers    int
	// Kills lists the SIGKILLs, in order.
	Kills []Kill
	// Rounds of Verify commands sent, and ids Verified: that reported
	// exactly their expected count.
	Rounds, Verified int
	// Delayed is true when the run generated delayed messages, each
	// delayed up to MaxDelay.
	Delayed  bool
	MaxDelay time.Duration
	// Longest is the longest chain of messages and of delayed messages
	// from a source command to an increment.
	Longest Chain
	// Settle is how long the verification waited, once every id had its
	// count, for delayed messages delivered twice to show (see
	// Config.MaxDelay); 0 without delayed messages. AllMatched is when
	// every id had its count (since the start), Confirmed how many ids
	// then reported it again in answer to a Verify sent after the wait.
	Settle, AllMatched time.Duration
	Confirmed          int
	// ProduceTime is the time from the first command to the last
	// acknowledgement (and the last kill); VerifyTime from then to the end
	// of verification.
	ProduceTime, VerifyTime, Elapsed time.Duration
	// Passed is true when every id reported exactly its expected count.
	Passed bool
}

// Kill is one SIGKILL of a worker.
type Kill struct {
	Worker string
	// After is the number of commands produced before the kill.
	After int
	At    time.Duration
}

// IDCount is the verification state of one id.
type IDCount struct {
	ID       int32
	Expected int64
	// Actual is the count the id last reported; Reported is false if it
	// reported nothing.
	Actual   int64
	Reported bool
}

func (c IDCount) String() string {
	if !c.Reported {
		return fmt.Sprintf("id %d: no result (expected %d)", c.ID, c.Expected)
	}
	if c.Actual == c.Expected {
		// it had its count but did not report it again after the wait
		// for delayed messages
		return fmt.Sprintf("id %d: %d of %d, then no answer after the wait for delayed messages", c.ID, c.Actual, c.Expected)
	}
	return fmt.Sprintf("id %d: %d of %d", c.ID, c.Actual, c.Expected)
}

// DuplicateError is the failure of a run in which an id reported a count
// above its expected one: an effect happened twice.
type DuplicateError struct {
	IDCount
	// ProduceErrors is the number of commands whose produce failed; such
	// a command may still have been written, which would explain an
	// over-count.
	ProduceErrors int
	// AfterAllMatched is true when the over-count came after every id had
	// reported its expected count, while the driver waited for delayed
	// messages: a late duplicate, such as a delayed message delivered
	// twice.
	AfterAllMatched bool
}

func (e *DuplicateError) Error() string {
	msg := fmt.Sprintf("smoke: duplicate: id %d reported count %d, expected %d: an effect happened more than once",
		e.ID, e.Actual, e.Expected)
	if e.AfterAllMatched {
		msg += " (after every id had reported its expected count: a late duplicate, such as a delayed message delivered twice)"
	}
	if e.ProduceErrors > 0 {
		msg += fmt.Sprintf(" (note: %d produces failed; a failed produce may have been written anyway)", e.ProduceErrors)
	}
	return msg
}

// LossError is the failure of a run in which some ids did not reach their
// expected count before the timeout: effects were lost (or are stuck).
type LossError struct {
	// Missing lists the ids that did not converge, by id.
	Missing []IDCount
	IDs     int
	Timeout time.Duration
	// DeadLetters is the number of records on the application's
	// dead-letter topic, -1 if unknown.
	DeadLetters int64
	DLQTopic    string
	// Partitions describes the loop and commands topics at the timeout,
	// to tell stuck partitions (an open transaction, records not
	// consumed) from lost effects (every partition consumed).
	Partitions []PartitionState
}

func (e *LossError) Error() string {
	const show = 20
	var b strings.Builder
	fmt.Fprintf(&b, "smoke: loss: %d of %d ids did not reach their expected count within %v: ", len(e.Missing), e.IDs, e.Timeout)
	for i, m := range e.Missing {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e.Missing)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(m.String())
	}
	if e.DeadLetters > 0 {
		fmt.Fprintf(&b, "; the dead-letter topic %s holds %d records", e.DLQTopic, e.DeadLetters)
	}
	return b.String()
}

// summary prints the result.
func (r *run) summary(err error) {
	res := r.res
	verdict := "PASS"
	if err != nil {
		verdict = "FAIL"
	}
	fmt.Fprintf(r.out, "stateloop-smoke: %s\n", verdict)
	fmt.Fprintf(r.out, "  application %s on %s; seed %d (--seed %d runs the same commands)\n", res.App, orUnknown(res.Broker), res.Seed, res.Seed)
	fmt.Fprintf(r.out, "  commands: %s produced, %s acknowledged, %d failed; %s increments expected over %d ids\n",
		num(res.Produced), num(res.Acked), res.ProduceErrors, num(int(res.Increments)), res.IDs)
	if res.ProduceError != nil {
		fmt.Fprintf(r.out, "  last produce error (the command is not counted): %v\n", res.ProduceError)
	}
	kills := make([]string, len(res.Kills))
	for i, k := range res.Kills {
		kills[i] = fmt.Sprintf("%s after %s commands", k.Worker, num(k.After))
	}
	fmt.Fprintf(r.out, "  workers: %d, %d killed with SIGKILL and restarted", res.Workers, len(res.Kills))
	if len(kills) > 0 {
		fmt.Fprintf(r.out, " (%s)", strings.Join(kills, ", "))
	}
	fmt.Fprintln(r.out)
	if res.Delayed {
		fmt.Fprintf(r.out, "  delayed messages: up to %v each; the longest chain to an increment: %d delayed messages, %d messages in all\n",
			res.MaxDelay, res.Longest.Delayed, res.Longest.Messages)
	} else {
		fmt.Fprintf(r.out, "  delayed messages: off\n")
	}
	fmt.Fprintf(r.out, "  verification: %d of %d ids reported exactly their expected count", res.Verified, res.IDs)
	if res.AllMatched > 0 {
		fmt.Fprintf(r.out, " (all by %s); waited %v for delayed messages, then %d of %d confirmed it",
			clock(res.AllMatched), res.Settle.Round(100*time.Millisecond), res.Confirmed, res.IDs)
	}
	fmt.Fprintf(r.out, "; %d rounds of Verify commands\n", res.Rounds)
	fmt.Fprintf(r.out, "  time: %v (producing %v, verifying %v)\n", res.Elapsed.Round(100*time.Millisecond),
		res.ProduceTime.Round(100*time.Millisecond), res.VerifyTime.Round(100*time.Millisecond))
	if err != nil {
		fmt.Fprintf(r.out, "  failure: %v\n", err)
	}
	var loss *LossError
	if errors.As(err, &loss) && len(loss.Partitions) > 0 {
		fmt.Fprintf(r.out, "  partitions at the timeout (consumer group %s):\n", res.App)
		for _, p := range loss.Partitions {
			fmt.Fprintf(r.out, "    %v\n", p)
		}
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(not started)"
	}
	return s
}

// clock formats a duration since the start as m:ss.
func clock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// num formats n with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
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
