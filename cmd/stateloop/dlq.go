package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/ops"
	"github.com/stateloop/stateloop/internal/wire"
)

// dlqFilter are the flags that choose dead letters.
type dlqFilter struct {
	fnType, id, reason, offsets, replayed string
	partition                             int32
}

func (f *dlqFilter) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.fnType, "type", "", "only dead letters of addresses of this function type, namespace/name")
	fs.StringVar(&f.id, "id", "", "only dead letters of addresses with this id")
	fs.StringVar(&f.reason, "reason", "", "only dead letters whose reason contains this text (in any case)")
	fs.Int32Var(&f.partition, "partition", ops.AnyPartition, "only dead letters of this partition of the dead-letter topic")
	fs.StringVar(&f.offsets, "offset", "", "with --partition: only the dead letter at this offset, or those from FROM to TO (FROM-TO, both included; FROM- has no end)")
	fs.StringVar(&f.replayed, "replayed", "", "yes: only those replayed; no: only those not replayed")
}

// filter checks the flags and returns the filter they make.
func (f *dlqFilter) filter() (ops.Filter, []error) {
	out := ops.Filter{Type: functions.TypeName(f.fnType), ID: f.id, Reason: f.reason, Partition: f.partition, To: -1, Replayed: f.replayed}
	var errs []error
	if f.fnType != "" {
		if _, err := parseFunctionType(f.fnType); err != nil {
			errs = append(errs, err)
		}
	}
	if f.partition < ops.AnyPartition {
		errs = append(errs, fmt.Errorf("--partition %d: must not be negative", f.partition))
	}
	if f.offsets != "" {
		from, to, err := parseOffsets(f.offsets)
		switch {
		case err != nil:
			errs = append(errs, err)
		case f.partition == ops.AnyPartition:
			errs = append(errs, errors.New("--offset: offsets are of one partition of the dead-letter topic: give --partition too"))
		default:
			out.From, out.To = from, to
		}
	}
	if f.replayed != "" && f.replayed != "yes" && f.replayed != "no" {
		errs = append(errs, fmt.Errorf("--replayed %q: want yes or no", f.replayed))
	}
	return out, errs
}

// parseOffsets parses N, FROM-TO or FROM-.
func parseOffsets(s string) (from, to int64, err error) {
	a, b, isRange := strings.Cut(s, "-")
	from, err1 := strconv.ParseInt(a, 10, 64)
	to = from
	var err2 error
	if isRange {
		to = -1
		if b != "" {
			to, err2 = strconv.ParseInt(b, 10, 64)
		}
	}
	if err1 != nil || err2 != nil || from < 0 || (isRange && b != "" && to < from) {
		return 0, 0, fmt.Errorf("--offset %q: want an offset N, a range FROM-TO (TO not below FROM) or FROM-", s)
	}
	return from, to, nil
}

func newDLQCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show and replay the dead letters of a running application",
		Long: `Work with the dead-letter topic (<app>-dlq) of a running application: the
records it could not process, each with the reason, where it came from
(topic, partition, offset) and the address it was for.

Dead letters are named by their partition and offset in the dead-letter
topic, as PARTITION/OFFSET (e.g. 0/17). They are read read_committed.

A replay sends a dead letter to its address again, through the runtime: it
takes its turn behind the address's other messages and is delivered in a
transaction, which also writes a replay marker to the dead-letter topic, so
that list shows it as replayed. Each dead letter is replayed once: a replay
carries an idempotency key made from the dead letter's partition and
offset, and those with a marker are skipped, so running replay again (after
a crash of the command or of the application, say) replays nothing twice.
If the replayed message fails again, it becomes a new dead letter.`,
		Example: `  stateloop dlq list --app greeter
  stateloop dlq show --app greeter 0/17
  stateloop dlq replay --app greeter --reason timeout --dry-run
  stateloop dlq replay --app greeter 0/17 2/5`,
	}
	cmd.AddCommand(newDLQListCommand(), newDLQShowCommand(), newDLQReplayCommand())
	return cmd
}

func newDLQListCommand() *cobra.Command {
	var o opsOptions
	var f dlqFilter
	var last int
	cmd := &cobra.Command{
		Use:   "list --app APP [filters]",
		Short: "List dead letters, oldest first",
		Long: `List the dead letters of the application that the filters choose (all without
filters), oldest first within each partition, with --last N the newest N
first. Text: one line per dead letter with its PARTITION/OFFSET, time,
address, whether it was replayed (or why it cannot be), and the reason.
JSON: one object per line (the HTTP API's GET /v1/dead-letters form).

The whole topic is read, so on a large dead-letter topic prefer filters by
partition and offset, or --last.`,
		Example: `  stateloop dlq list --app greeter
  stateloop dlq list --app shop --type shop/cart --reason timeout --replayed no
  stateloop dlq list --app shop --partition 2 --offset 100-200 --format json
  stateloop dlq list --app shop --last 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, errs := f.filter()
			if last < 0 {
				errs = append(errs, fmt.Errorf("--last %d: must not be negative", last))
			}
			return o.withClient(cmd.Context(), prefixed(o, errs), func(c *ops.Client) error {
				dls, errs := c.DeadLetters(cmd.Context(), filter, last)
				if err := o.printDeadLetters(cmd.OutOrStdout(), c, dls); err != nil {
					return err
				}
				return o.readErrors(errs)
			})
		},
	}
	o.register(cmd, false, true)
	f.register(cmd)
	cmd.Flags().IntVar(&last, "last", 0, "only the newest N, newest first (reads only the end of each partition)")
	return cmd
}

// prefixed names the command in errors of its flags.
func prefixed(o opsOptions, errs []error) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = o.problem("%w", e)
	}
	return out
}

// readErrors reports the partitions that could not be read.
func (o *opsOptions) readErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return o.problem("some of it could not be read (the rest is shown): %w", errors.Join(errs...))
}

func (o *opsOptions) printDeadLetters(w io.Writer, c *ops.Client, dls []ops.DeadLetter) error {
	topo := c.Topology()
	if o.format == "json" {
		for i := range dls {
			if err := jsonLine(w, dls[i].View(topo)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEAD LETTER\tTIME\tADDRESS\tREPLAYED\tREASON")
	for i := range dls {
		d := &dls[i]
		addr := "-"
		if d.Address != nil {
			addr = d.Address.String()
		}
		status := "no"
		switch {
		case d.Replayed != nil:
			status = d.Replayed.Format(time.RFC3339)
		default:
			if _, err := d.Replay(topo); err != nil {
				status = "cannot be"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Ref(), d.Time.Format(time.RFC3339), addr, status, oneLine(d.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d dead letters in %s\n", len(dls), topo.DLQTopic())
	return nil
}

// oneLine keeps the first line of a text, cut at 200 characters.
func oneLine(s string) string {
	s, _, cut := strings.Cut(s, "\n")
	if r := []rune(s); len(r) > 200 {
		s, cut = string(r[:200]), true
	}
	if cut {
		s += " …"
	}
	return s
}

func newDLQShowCommand() *cobra.Command {
	var o opsOptions
	cmd := &cobra.Command{
		Use:   "show --app APP PARTITION/OFFSET",
		Short: "Show one dead letter with its headers and message",
		Long: `Show the dead letter at PARTITION/OFFSET of the dead-letter topic: the reason,
the address, the record it came from, its headers, the message (a loop
record's, decoded, its value shown by its type) or value, whether it was
replayed, and if it cannot be, why.`,
		Example: `  stateloop dlq show --app greeter 0/17
  stateloop dlq show --app greeter 0/17 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, off, err := wire.ParseDeadLetterRef(args[0])
			if err != nil {
				err = o.problem("%q: want PARTITION/OFFSET, e.g. 0/17 (dlq list shows them)", args[0])
			}
			var errs []error
			if err != nil {
				errs = append(errs, err)
			}
			return o.withClient(cmd.Context(), errs, func(c *ops.Client) error {
				d, err := c.DeadLetter(cmd.Context(), p, off)
				if err != nil {
					return o.problem("%w", err)
				}
				v := d.View(c.Topology())
				w := cmd.OutOrStdout()
				if o.format == "json" {
					return jsonLine(w, v)
				}
				return printDeadLetter(w, c.Topology().DLQTopic(), v)
			})
		},
	}
	o.register(cmd, false, true)
	return cmd
}

func printDeadLetter[T ~string](w io.Writer, topic T, v ops.DeadLetterView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "dead letter\t%s of %s, written %s\n", v.Ref, topic, v.Time.Format(time.RFC3339))
	fmt.Fprintf(tw, "reason\t%s\n", strings.ReplaceAll(v.Reason, "\n", "\n\t"))
	if v.FunctionType != "" {
		fmt.Fprintf(tw, "address\t%s/%s\n", v.FunctionType, v.FunctionID)
	}
	if v.Source != nil {
		fmt.Fprintf(tw, "from\t%s, partition %d, offset %d\n", v.Source.Topic, v.Source.Partition, v.Source.Offset)
	}
	if v.Key != "" {
		fmt.Fprintf(tw, "key\t%q\n", v.Key)
	}
	if m := v.Message; m != nil {
		fmt.Fprintf(tw, "message\t%s to %s", m.Type, m.Target)
		if m.Caller != "" {
			fmt.Fprintf(tw, " from %s", m.Caller)
		}
		fmt.Fprintf(tw, "\n\t%s\n", shown(m.Value))
	} else if v.Value != nil {
		fmt.Fprintf(tw, "value\t%s\n", shown(v.Value))
	}
	if v.ValueDropped {
		fmt.Fprintf(tw, "value\t(dropped: %s)\n", v.Headers[wire.HeaderValueDropped])
	}
	if v.Truncated {
		fmt.Fprintf(tw, "\t(the first 4 KiB)\n")
	}
	switch {
	case v.Replayed != nil:
		fmt.Fprintf(tw, "replayed\t%s\n", v.Replayed.Format(time.RFC3339))
	case v.NotReplayable != "":
		fmt.Fprintf(tw, "replay\t%s\n", v.NotReplayable)
	default:
		fmt.Fprintf(tw, "replayed\tno\n")
	}
	for k, val := range v.Headers {
		if !strings.HasPrefix(k, "stateloop.") {
			fmt.Fprintf(tw, "header\t%s=%s\n", k, val)
		}
	}
	return tw.Flush()
}

// shown writes a value as JSON does, strings as they are.
func shown(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b strings.Builder
	_ = jsonLine(&b, v)
	return strings.TrimSpace(b.String())
}

func newDLQReplayCommand() *cobra.Command {
	var o opsOptions
	var f dlqFilter
	var all, dryRun bool
	cmd := &cobra.Command{
		Use:   "replay --app APP (PARTITION/OFFSET... | filters | --all) [--dry-run]",
		Short: "Send dead letters to their addresses again, once each",
		Long: `Replay the dead letters named (PARTITION/OFFSET, as dlq list shows them), or
those the filters choose, or with --all every one: each is sent to its
address again through the runtime, and delivered once. Those replayed
before are skipped; a dead letter that cannot be replayed says why (an
ingress record that never reached a function, say: fix the cause and write
it to its topic again).

For each dead letter it prints its PARTITION/OFFSET, address and what
became of it:
  replayed     delivered to its address (if it fails again, it is a new
               dead letter)
  skipped      replayed before (its replay marker says so)
  duplicate    a replay of it was delivered before and its marker is not
               read yet: not delivered again
  dry-run      with --dry-run: would be replayed
  refused      cannot be replayed, or the application refused it: why
  unanswered   written, but the application did not answer within
               --timeout: it is delivered once the application runs;
               running the command again is safe

The exit status is 1 if any was refused or unanswered.`,
		Example: `  # what would be replayed
  stateloop dlq replay --app shop --type shop/cart --reason timeout --dry-run
  # replay them
  stateloop dlq replay --app shop --type shop/cart --reason timeout
  # two dead letters by name
  stateloop dlq replay --app shop 0/17 3/4
  # everything not replayed yet
  stateloop dlq replay --app shop --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, errs := f.filter()
			refs := make([][2]int64, 0, len(args))
			for _, a := range args {
				p, off, err := wire.ParseDeadLetterRef(a)
				if err != nil {
					errs = append(errs, fmt.Errorf("%q: want PARTITION/OFFSET, e.g. 0/17 (dlq list shows them)", a))
				}
				refs = append(refs, [2]int64{int64(p), off})
			}
			switch {
			case len(args) > 0 && (!filter.IsZero() || all):
				errs = append(errs, errors.New("give dead letters by name, or filters, or --all; not several"))
			case len(args) == 0 && filter.IsZero() && !all:
				errs = append(errs, errors.New("no dead letters chosen: name them (PARTITION/OFFSET), give filters (--type, --id, --reason, --partition and --offset), or --all"))
			case all && !filter.IsZero():
				errs = append(errs, errors.New("--all replays every dead letter: leave out the filters, or --all"))
			}
			return o.withClient(cmd.Context(), prefixed(o, errs), func(c *ops.Client) error {
				return o.replay(cmd.Context(), cmd.OutOrStdout(), c, filter, refs, dryRun)
			})
		},
	}
	o.register(cmd, true, true)
	f.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter not replayed yet")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be replayed, and send nothing")
	return cmd
}

func (o *opsOptions) replay(ctx context.Context, w io.Writer, c *ops.Client, filter ops.Filter, refs [][2]int64, dryRun bool) error {
	var dls []ops.DeadLetter
	var errs []error
	if len(refs) > 0 {
		for _, r := range refs {
			d, err := c.DeadLetter(ctx, int32(r[0]), r[1])
			if err != nil {
				return o.problem("%w", err)
			}
			dls = append(dls, d)
		}
	} else {
		dls, errs = c.DeadLetters(ctx, filter, 0)
	}
	counts := map[string]int{}
	var werr error
	c.Replay(ctx, dls, dryRun, o.wait, func(r ops.ReplayOutcome) {
		counts[r.Status]++
		addr := "-"
		if a := r.DeadLetter.Address; a != nil {
			addr = a.String()
		}
		if o.format == "json" {
			v := map[string]string{"ref": r.DeadLetter.Ref(), "address": addr, "status": r.Status}
			if r.Err != nil {
				v["error"] = r.Err.Error()
			}
			if err := jsonLine(w, v); err != nil && werr == nil {
				werr = err
			}
			return
		}
		line := fmt.Sprintf("%s %s %s", r.DeadLetter.Ref(), addr, r.Status)
		if r.Err != nil {
			line += ": " + r.Err.Error()
		}
		fmt.Fprintln(w, line)
	})
	if werr != nil {
		return werr
	}
	if o.format != "json" {
		var parts []string
		for _, s := range []string{"replayed", "dry-run", "skipped", "duplicate", "refused", "unanswered"} {
			if counts[s] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "no dead letters chosen")
		}
		fmt.Fprintln(w, strings.Join(parts, ", "))
	}
	if err := o.readErrors(errs); err != nil {
		return err
	}
	if n := counts["refused"] + counts["unanswered"]; n > 0 {
		what := "refused or unanswered"
		if counts["unanswered"] > 0 {
			what += "; unanswered ones are delivered once the application runs, and running the command again is safe"
		}
		return o.problem("%d of %d dead letters %s", n, len(dls), what)
	}
	return nil
}
