package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/ops"
)

// opsOptions are the flags every operator command (dlq, timers, describe,
// state set|delete) has.
type opsOptions struct {
	brokers []string
	app     string
	wait    time.Duration
	format  string
	cmd     *cobra.Command
}

// name is the command's name for errors, e.g. "dlq replay".
func (o *opsOptions) name() string { return strings.TrimPrefix(o.cmd.CommandPath(), "stateloop ") }

func (o *opsOptions) register(cmd *cobra.Command, changes, formats bool) {
	o.cmd = cmd
	fs := cmd.Flags()
	brokersFlag(fs, &o.brokers)
	fs.StringVar(&o.app, "app", "", "the application (its name prefixes its topics), e.g. greeter")
	_ = cmd.MarkFlagRequired("app")
	if changes {
		fs.DurationVar(&o.wait, "timeout", ops.DefaultWait, "how long to wait for the application's answer; the change is applied when the application runs, answered or not")
	}
	if formats {
		fs.StringVar(&o.format, "format", "text", "output format: text, or json (one object per line)")
	}
}

// check reports every problem of the common flags, with problems of the
// command's own.
func (o *opsOptions) check(more ...error) error {
	errs := more
	if err := app.CheckBrokers(o.name(), o.brokers); err != nil {
		errs = append(errs, err)
	}
	if o.format != "" && o.format != "text" && o.format != "json" {
		errs = append(errs, fmt.Errorf("stateloop %s: --format %q: want text or json", o.name(), o.format))
	}
	if o.wait < 0 {
		errs = append(errs, fmt.Errorf("stateloop %s: --timeout %v: must not be negative", o.name(), o.wait))
	}
	return errors.Join(errs...)
}

// problem is an error of a flag of the command.
func (o *opsOptions) problem(format string, a ...any) error {
	return fmt.Errorf("stateloop "+o.name()+": "+format, a...)
}

// dial connects to the application.
func (o *opsOptions) dial(ctx context.Context) (*ops.Client, error) {
	c, err := ops.Dial(ctx, o.brokers, o.app)
	if err != nil {
		return nil, fmt.Errorf("stateloop %s: %w", o.name(), err)
	}
	return c, nil
}

// withClient checks the flags (errs are the problems the command found
// in its own), connects to the application and calls f with the client,
// which it closes after.
func (o *opsOptions) withClient(ctx context.Context, errs []error, f func(*ops.Client) error) error {
	if err := o.check(errs...); err != nil {
		return err
	}
	c, err := o.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// addressFlags are --type and --id, an address.
type addressFlags struct {
	fnType, id string
}

func (a *addressFlags) register(cmd *cobra.Command, whose string) {
	cmd.Flags().StringVar(&a.fnType, "type", "", "the function type of the address "+whose+", namespace/name")
	cmd.Flags().StringVar(&a.id, "id", "", "the id of the address "+whose)
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("id")
}

// address checks --type and --id.
func (a *addressFlags) address(o *opsOptions) (functions.Address, []error) {
	fn, err := parseFunctionType(a.fnType)
	if err != nil {
		return functions.Address{}, []error{o.problem("%w", err)}
	}
	addr := functions.Address{Type: fn, ID: a.id}
	if err := addr.Validate(); err != nil {
		return addr, []error{o.problem("--id: %w", err)}
	}
	return addr, nil
}

// jsonLine writes v as one line of JSON.
func jsonLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// parseFunctionType parses --type.
func parseFunctionType(s string) (functions.TypeName, error) {
	fn, err := functions.ParseTypeName(s)
	if err != nil {
		return "", fmt.Errorf("--type %q: %v; want namespace/name, e.g. greeter/greet", s, err)
	}
	return fn, nil
}
