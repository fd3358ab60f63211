package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// builtinApp is an application that `stateloop run` can run by name.
type builtinApp struct {
	name        string
	description string
	build       func() (topology.Topology, *functions.Registry)
}

var builtinApps = []builtinApp{
	{name: "greeter", description: "greets the names written to topic names on topic greetings (examples/greeter)", build: greeter.Build},
}

func findApp(name string) (builtinApp, bool) {
	for _, a := range builtinApps {
		if a.name == name {
			return a, true
		}
	}
	return builtinApp{}, false
}

// appList describes the built-in applications for help texts and errors.
func appList() string {
	var b strings.Builder
	for _, a := range builtinApps {
		fmt.Fprintf(&b, "\n  %-10s %s", a.name, a.description)
	}
	return b.String()
}

func appNames() []string {
	names := make([]string, len(builtinApps))
	for i, a := range builtinApps {
		names[i] = a.name
	}
	return names
}

func newRunCommand() *cobra.Command {
	var f app.Flags
	cmd := &cobra.Command{
		Use:   "run APP",
		Short: "Run a built-in stateloop application",
		Long: `Run a built-in stateloop application until Ctrl-C (SIGINT) or SIGTERM.

Built-in applications:` + appList() + `

Without --brokers (or ` + app.EnvBrokers + `) it starts an embedded Kafka broker on
--listen that keeps its data in <data-dir>/broker, so nothing else needs to be
installed; stateloop send, stateloop consume, kcat and more instances of the
application can connect to it with --brokers. With --brokers it joins the
application's consumer group on that Kafka cluster; start it several times,
each with its own --data-dir, to spread the partitions over several instances.

On Ctrl-C the application commits its last transaction and leaves the consumer
group before the embedded broker stops; press Ctrl-C again to kill it at once.

Your own applications written in Go take the same flags when their main
function is app.Main (package github.com/stateloop/stateloop/app). Running an
application described by a StateFun module.yaml (-f module.yaml) is planned.`,
		Example: `  # run the greeter with an embedded broker on 127.0.0.1:9092
  stateloop run greeter

  # run it against a Kafka cluster, as a second instance on this machine
  stateloop run greeter --brokers 127.0.0.1:9092 --data-dir ./stateloop-data-2`,
		ValidArgs: appNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := appFromArgs(args)
			if err != nil {
				return err
			}
			return app.Run(cmd.Context(), f, a.build, cmd.OutOrStdout())
		},
	}
	f.Register(cmd.Flags())
	return cmd
}

func appFromArgs(args []string) (builtinApp, error) {
	available := "built-in applications: " + strings.Join(appNames(), ", ") +
		" (running your own module.yaml with -f is planned but not available yet)"
	switch {
	case len(args) == 0:
		return builtinApp{}, fmt.Errorf("stateloop run: name the application to run, e.g. `stateloop run greeter`; %s", available)
	case len(args) > 1:
		return builtinApp{}, fmt.Errorf("stateloop run: got %d arguments %q, want one application name; %s", len(args), args, available)
	}
	a, ok := findApp(args[0])
	if !ok {
		return builtinApp{}, fmt.Errorf("stateloop run: unknown application %q; %s", args[0], available)
	}
	return a, nil
}
