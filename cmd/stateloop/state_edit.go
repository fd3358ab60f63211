package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/ops"
	"github.com/stateloop/stateloop/internal/wire"
)

// stateEditOptions are the flags of `stateloop state set|delete`.
type stateEditOptions struct {
	opsOptions
	addressFlags
}

func (o *stateEditOptions) register(cmd *cobra.Command) {
	o.opsOptions.register(cmd, true, false)
	o.addressFlags.register(cmd, "whose state to change")
}

// print writes the answer to an edit: the address's state before and
// after, one line of JSON.
func (o *stateEditOptions) print(cmd *cobra.Command, res wire.ControlResult) error {
	return jsonLine(cmd.OutOrStdout(), ops.StateResultView(res))
}

func newStateSetCommand() *cobra.Command {
	var o stateEditOptions
	var name, valueType, valueFile string
	cmd := &cobra.Command{
		Use:   "set --app APP --type NS/NAME --id ID --state NAME [--value-type TYPE] (VALUE | --value-file FILE)",
		Short: "Set a state value of an address, in order with its messages",
		Long: `Set one state value of an address of a running application. The change goes
through the runtime: it is applied at the address in order with its
messages (after those before it, before those after it, also while a
message is being retried or a remote call is running), in a transaction,
and the state the function sees next is the new one. It prints the
address's state before and after, as state get shows state, one line of
JSON.

VALUE is parsed for StateFun's built-in types (42 for io.statefun.types/long,
true, 1.5, text for io.statefun.types/string) and taken as the value's bytes
for any other type (JSON for a JSON type). --value-type is the value's type;
without it, the type the function declares for the state, else the type of
its current value. The runtime refuses a state the function does not
declare and a type other than the declared one, with the reason (and the
change in the dead-letter topic).

An expiring state value gets its time to live anew, as a write by the
function would give it. Without an answer within --timeout the command
fails, but the change is applied when the application runs.`,
		Example: `  stateloop state set --app greeter --type greeter/greet --id Alice --state visits 0
  stateloop state set --app shop --type shop/cart --id u7 --state items --value-file items.json
  stateloop state set --app shop --type shop/cart --id u7 --state note --value-type io.statefun.types/string "call back"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, errs := o.address(&o.opsOptions)
			if name == "" {
				errs = append(errs, o.problem("--state: missing; name the state value to set"))
			}
			if valueType != "" {
				if _, err := functions.ParseTypeName(valueType); err != nil {
					errs = append(errs, o.problem("--value-type %q: %w", valueType, err))
				}
			}
			if (len(args) == 1) == (valueFile != "") {
				errs = append(errs, o.problem("give the new value as VALUE or --value-file, one of them"))
			}
			var value []byte
			if len(args) == 1 {
				value = []byte(args[0])
			} else if valueFile != "" {
				b, err := readFileOrStdin(cmd, valueFile)
				if err != nil {
					errs = append(errs, o.problem("%w", err))
				}
				value = b
			}
			return o.withClient(cmd.Context(), errs, func(c *ops.Client) error {
				res, err := c.SetState(cmd.Context(), addr, []ops.StateValue{{Name: name, Type: functions.TypeName(valueType), Text: value}}, o.wait)
				if err != nil {
					return o.problem("%w", err)
				}
				return o.print(cmd, res)
			})
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&name, "state", "", "the name of the state value")
	cmd.Flags().StringVar(&valueType, "value-type", "", "the value's type name, e.g. io.statefun.types/long; default: the declared type, else the current value's")
	cmd.Flags().StringVar(&valueFile, "value-file", "", "set the bytes of this file instead of VALUE; - reads stdin")
	return cmd
}

// readFileOrStdin reads a file, or stdin for "-".
func readFileOrStdin(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	return os.ReadFile(path)
}

func newStateDeleteCommand() *cobra.Command {
	var o stateEditOptions
	var names []string
	var all bool
	cmd := &cobra.Command{
		Use:   "delete --app APP --type NS/NAME --id ID (--state NAME... | --all)",
		Short: "Delete state values of an address, in order with its messages",
		Long: `Delete state values of an address of a running application: those named
(repeat --state), or with --all every one (the address then has no state;
its table record becomes a tombstone). As state set, the change goes
through the runtime, in order with the address's messages, in a
transaction, and prints the state before and after, one line of JSON.
Deleting a value the address does not have changes nothing. --all also
replaces state that does not decode.`,
		Example: `  stateloop state delete --app greeter --type greeter/greet --id Alice --state visits
  stateloop state delete --app shop --type shop/cart --id u7 --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, errs := o.address(&o.opsOptions)
			if (len(names) == 0) == !all {
				errs = append(errs, o.problem("name the values to delete (--state) or give --all, one of them"))
			}
			return o.withClient(cmd.Context(), errs, func(c *ops.Client) error {
				res, err := c.EditState(cmd.Context(), addr, wire.StateEdit{Delete: names, DeleteAll: all}, o.wait)
				if err != nil {
					return o.problem("%w", err)
				}
				return o.print(cmd, res)
			})
		},
	}
	o.register(cmd)
	cmd.Flags().StringArrayVar(&names, "state", nil, "the name of a state value to delete (repeat for more)")
	cmd.Flags().BoolVar(&all, "all", false, "delete every state value of the address")
	return cmd
}
