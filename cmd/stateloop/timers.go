package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/ops"
)

func newTimersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "timers",
		Short: "List and cancel the pending delayed messages of a running application",
		Long: `Work with the delayed messages (SendAfter, StateFun's sendAfter) that wait in
the timers topic (<app>-timers) of a running application. A delayed message
belongs to the address that sent it (its sender), which owns its
cancellation token; a message sent without a token has one the runtime
made, shown as auto:<hex>.

list reads the timers topic read_committed. cancel goes through the
runtime, in order with the sender's messages, as the sender's own
CancelDelayed would.`,
		Example: `  stateloop timers list --app fraud
  stateloop timers list --app fraud --type fraud/account --id acct-7
  stateloop timers cancel --app fraud --type fraud/account --id acct-7 --token expire`,
	}
	cmd.AddCommand(newTimersListCommand(), newTimersCancelCommand())
	return cmd
}

func newTimersListCommand() *cobra.Command {
	var o opsOptions
	var fnType, id, to string
	cmd := &cobra.Command{
		Use:   "list --app APP [--type NS/NAME [--id ID]] [--to NS/NAME[/ID]]",
		Short: "List pending delayed messages by due time",
		Long: `List the delayed messages waiting to be sent, by due time: those sent by the
addresses of a function type (--type), by one address (--type and --id;
reads only its partition), or to a target (--to). Text: one line each with
the due time, the sender, the token, the target and the message; JSON: one
object per line.`,
		Example: `  stateloop timers list --app fraud
  stateloop timers list --app fraud --type fraud/account --id acct-7
  stateloop timers list --app shop --to shop/cart --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := ops.TimerFilter{Type: functions.TypeName(fnType), ID: id}
			var errs []error
			if fnType != "" {
				if _, err := parseFunctionType(fnType); err != nil {
					errs = append(errs, o.problem("%w", err))
				}
			}
			if id != "" && fnType == "" {
				errs = append(errs, o.problem("--id needs --type: an address is a function type and an id"))
			}
			if to != "" {
				var err error
				if f.ToType, f.ToID, err = ops.ParseTarget(to); err != nil {
					errs = append(errs, o.problem("--to: %w", err))
				}
			}
			return o.withClient(cmd.Context(), errs, func(c *ops.Client) error {
				timers, rerrs := c.Timers(cmd.Context(), f)
				if err := o.printTimers(cmd.OutOrStdout(), timers, true); err != nil {
					return err
				}
				return o.readErrors(rerrs)
			})
		},
	}
	o.register(cmd, false, true)
	cmd.Flags().StringVar(&fnType, "type", "", "only delayed messages sent by addresses of this function type")
	cmd.Flags().StringVar(&id, "id", "", "with --type: only those sent by this address")
	cmd.Flags().StringVar(&to, "to", "", "only delayed messages to this function type (namespace/name) or address (namespace/name/id)")
	return cmd
}

// printTimers writes delayed messages in the format of o; with total, a
// last line counts them.
func (o *opsOptions) printTimers(w io.Writer, timers []ops.Timer, total bool) error {
	if o.format == "json" {
		for i := range timers {
			if err := jsonLine(w, timers[i].View()); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DUE\tSENDER\tTOKEN\tTO\tMESSAGE")
	for i := range timers {
		v := timers[i].View()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\n", v.Due.Format(time.RFC3339), v.Sender, v.Token, v.Message.Target, v.Message.Type, oneLine(shown(v.Message.Value)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total {
		fmt.Fprintf(w, "%d delayed messages waiting\n", len(timers))
	}
	return nil
}

func newTimersCancelCommand() *cobra.Command {
	var o opsOptions
	var a addressFlags
	var tokens []string
	var all bool
	cmd := &cobra.Command{
		Use:   "cancel --app APP --type NS/NAME --id ID (--token TOKEN... | --all)",
		Short: "Cancel delayed messages of an address",
		Long: `Cancel delayed messages that the address (--type and --id) sent: those with
the tokens given (as timers list shows them; repeat --token), or with --all
every one it has waiting when the cancel reaches it. The cancel travels
through the runtime and is applied at the address in order with its
messages, in a transaction. It prints the delayed messages it cancelled; a
token with none waiting (sent already, or never there) cancels nothing.`,
		Example: `  stateloop timers cancel --app fraud --type fraud/account --id acct-7 --token expire
  stateloop timers cancel --app fraud --type fraud/account --id acct-7 --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, errs := a.address(&o)
			if (len(tokens) == 0) == !all {
				errs = append(errs, o.problem("give the tokens to cancel (--token, as timers list shows them) or --all, one of them"))
			}
			return o.withClient(cmd.Context(), errs, func(c *ops.Client) error {
				cancelled, err := c.CancelTimers(cmd.Context(), addr, tokens, all, o.wait)
				if err != nil {
					return o.problem("%w", err)
				}
				w := cmd.OutOrStdout()
				if err := o.printTimers(w, cancelled, false); err != nil {
					return err
				}
				if o.format != "json" {
					fmt.Fprintf(w, "%d delayed messages of %s cancelled\n", len(cancelled), addr)
				}
				return nil
			})
		},
	}
	o.register(cmd, true, true)
	a.register(cmd, "that sent the delayed messages")
	cmd.Flags().StringArrayVar(&tokens, "token", nil, "a token to cancel (repeat for more)")
	cmd.Flags().BoolVar(&all, "all", false, "cancel every delayed message the address has waiting")
	return cmd
}
