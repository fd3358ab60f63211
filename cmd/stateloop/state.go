package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/topology"
)

// stateOptions are the flags of `stateloop state get|list`.
type stateOptions struct {
	brokers []string
	app     string
	fnType  string
	id      string
	prefix  string
	timeout time.Duration
}

func newStateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Read, set and delete the state of function addresses",
		Long: `Read the committed state of a function type's addresses (get, list), or change
it (set, delete).

get and list read the type's table topic (<app>-<type>-table), through a
goka.View that reads read_committed. Values are shown by their type name:
StateFun's built-in types as values, JSON as JSON, protobuf messages whose
type the program knows as JSON, other bytes as base64; expiring values with
their expiry time. Each address is one line of JSON:
{"id": ..., "state": {name: {"type", "value", "expires_at"}}}.
They only read: a function type whose table does not exist yet is an error,
and no topic is created.

set and delete go through the running application: the change is applied
at the address in order with its messages, in a transaction (never written
to the table beside the runtime), and they print the state before and
after.`,
		Example: `  stateloop state get --app greeter --type greeter/greet --id Alice
  stateloop state list --app greeter --type greeter/greet --prefix Al
  stateloop state set --app greeter --type greeter/greet --id Alice --state visits 10
  stateloop state delete --app greeter --type greeter/greet --id Alice --all`,
	}
	cmd.AddCommand(newStateGetCommand(), newStateListCommand(), newStateSetCommand(), newStateDeleteCommand())
	return cmd
}

func (o *stateOptions) register(cmd *cobra.Command) {
	brokersFlag(cmd.Flags(), &o.brokers)
	cmd.Flags().StringVar(&o.app, "app", "", "the application (its name prefixes its topics), e.g. greeter")
	cmd.Flags().StringVar(&o.fnType, "type", "", "the function type, namespace/name, e.g. greeter/greet")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 60*time.Second, "give up when the table is not read by then")
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.MarkFlagRequired("type")
}

func newStateGetCommand() *cobra.Command {
	var o stateOptions
	cmd := &cobra.Command{
		Use:   "get --app APP --type NS/NAME --id ID",
		Short: "Print the state of one address",
		Long: `Print the committed state of one address as a line of JSON, read from its
function type's table with read_committed. An address without state is an
error (exit status 1).`,
		Example: `  stateloop state get --app greeter --type greeter/greet --id Alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), func(v *gokaview.View, out *json.Encoder) error {
				val, err := v.Get(o.id)
				if err != nil {
					return err
				}
				s, _ := val.(gokaview.State)
				if len(s) == 0 {
					return fmt.Errorf("%s/%s has no state in application %s", o.fnType, o.id, o.app)
				}
				return out.Encode(addressState{ID: o.id, State: gokaview.Display(s)})
			})
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&o.id, "id", "", "the function id")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func newStateListCommand() *cobra.Command {
	var o stateOptions
	cmd := &cobra.Command{
		Use:   "list --app APP --type NS/NAME [--prefix P]",
		Short: "Print the state of every address of a type (whose id starts with --prefix)",
		Long: `Print the committed state of every address of a function type that has state,
one line of JSON each, in id order; --prefix keeps the ids that start with it.
The whole table is read first.`,
		Example: `  stateloop state list --app greeter --type greeter/greet
  stateloop state list --app shop --type shop/cart --prefix user-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), func(v *gokaview.View, out *json.Encoder) error {
				it, err := v.Iterator()
				if err != nil {
					return err
				}
				defer it.Release()
				for it.Next() {
					if !strings.HasPrefix(it.Key(), o.prefix) {
						continue
					}
					val, err := it.Value()
					if err != nil {
						return err
					}
					if s, _ := val.(gokaview.State); len(s) > 0 {
						if err := out.Encode(addressState{ID: it.Key(), State: gokaview.Display(s)}); err != nil {
							return err
						}
					}
				}
				return nil
			})
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&o.prefix, "prefix", "", "only ids that start with this")
	return cmd
}

type addressState struct {
	ID    string                           `json:"id"`
	State map[string]gokaview.DisplayValue `json:"state"`
}

// run reads the table into a view and calls show once it has recovered.
func (o *stateOptions) run(ctx context.Context, w io.Writer, show func(*gokaview.View, *json.Encoder) error) error {
	fn, err := functions.ParseTypeName(o.fnType)
	if err != nil {
		return fmt.Errorf("--type %q: %v; want namespace/name, e.g. greeter/greet", o.fnType, err)
	}
	// Regression (issue 10): with a wrong --app or --type the view read an
	// empty (or auto-created) table, and get said the address "has no
	// state" as if the application existed.
	client, err := connect(o.brokers, clientConfig())
	if err != nil {
		return err
	}
	a, err := findApplication(client, o.brokers, o.app)
	if err == nil {
		if err = a.checkType(fn); err != nil {
			err = fmt.Errorf("%w; check --type", err)
		}
	}
	client.Close()
	if err != nil {
		return err
	}
	topo := topology.Topology{App: o.app}
	view, err := gokaview.NewView(o.brokers, topo, fn, goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if errors.Is(err, gokaview.ErrNoTable) {
		return fmt.Errorf("table topic %s does not exist: function type %s has no state yet (the application creates "+
			"its table when the type is first invoked), or --app %s is not the application's name (its tables are %s-<type>-table)",
			topo.TableTopic(fn), fn, o.app, o.app)
	}
	if err != nil {
		return fmt.Errorf("read table %s: %w", topo.TableTopic(fn), err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	select {
	case <-view.WaitRunning():
	case err := <-done:
		return fmt.Errorf("read table %s: %w", topo.TableTopic(fn), err)
	case <-ctx.Done():
		return fmt.Errorf("read table %s: not read within %v; is Kafka at %s reachable?", topo.TableTopic(fn), o.timeout, strings.Join(o.brokers, ","))
	}
	err = show(view, json.NewEncoder(w))
	cancel() // Run returns and closes the view's clients
	if rerr := <-done; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
		err = rerr
	}
	return err
}
