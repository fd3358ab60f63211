package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/examples/shopping-cart/shop"
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
	{name: "fraud", description: "scores the transactions of topic transactions, alerts on topic alerts; 30-day window (examples/fraud)", build: fraud.Build},
	{name: "shopping-cart", description: "StateFun's shopping cart: carts reserve stock at inventories, receipts on topic receipts (examples/shopping-cart)", build: shop.Build},
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
		fmt.Fprintf(&b, "\n  %-13s %s", a.name, a.description)
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
	var name string
	cmd := &cobra.Command{
		Use:   "run [APP] [-f module.yaml]...",
		Short: "Run a built-in application, or one described by a StateFun module.yaml",
		Long: `Run a built-in stateloop application, or an application described by a StateFun
module.yaml (-f), until Ctrl-C (SIGINT) or SIGTERM.

Built-in applications:` + appList() + `

With -f module.yaml stateloop runs the remote functions that the file's HTTP
endpoints (io.statefun.endpoints.v2/http, v1) serve, with its Kafka ingresses
and egresses (io.statefun.kafka.v1/ingress, egress): functions written with
the official StateFun SDKs run unchanged. A StateFun 2.x file (version "2.0" or
"1.0") runs its functions with StateFun 2.x's protocol, for the 2.x SDKs.
StateFun playground's HTTP ingress (io.statefun.playground.v1/ingress) is
served by the HTTP listener: on --http, else on 127.0.0.1 and its port.
Repeat -f to run several files as one application (StateFun 2.x and 3.x
functions together). Problems in the files are all listed at start-up with
their line. The application's name (its consumer group and the
prefix of its topics) is --app, else the consumerGroupId of the ingresses,
else the file's name. Without --brokers the Kafka address the file names is
used, and without one an embedded broker. docs/statefun.md tells StateFun users
what differs.

Without --brokers (or ` + app.EnvBrokers + `) it starts an embedded Kafka broker on
--listen that keeps its data in <data-dir>/broker, so nothing else needs to be
installed; stateloop send, stateloop consume, kcat and more instances of the
application can connect to it with --brokers. With --brokers it joins the
application's consumer group on that Kafka cluster; start it several times,
each with its own --data-dir, to spread the partitions over several instances.
A running instance locks its --data-dir: a second one started on the same
directory fails at once.

` + app.TracingHelp + `

On Ctrl-C the application commits its last transaction and leaves the consumer
group before the embedded broker stops; press Ctrl-C again to kill it at once.

Your own applications written in Go take the same flags when their main
function is app.Main (package github.com/stateloop/stateloop/app); they take -f
too, so Go functions and remote functions run in one application.`,
		Example: `  # run the greeter with an embedded broker on 127.0.0.1:9092
  stateloop run greeter

  # run the functions of a StateFun module.yaml (their HTTP endpoints must run)
  stateloop run -f module.yaml --brokers 127.0.0.1:9092

  # a StateFun 2.x module and a 3.x one as one application
  stateloop run -f module-2x.yaml -f module-3x.yaml
  # run it against a Kafka cluster, as a second instance on this machine
  stateloop run greeter --brokers 127.0.0.1:9092 --data-dir ./stateloop-data-2`,
		ValidArgs: appNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(f.ModuleFiles) > 0 {
				build := func() (topology.Topology, *functions.Registry) {
					return topology.Topology{App: name}, functions.NewRegistry()
				}
				return app.Run(cmd.Context(), f, build, cmd.OutOrStdout())
			}
			a, err := appFromArgs(args)
			if err != nil {
				return err
			}
			if name != "" {
				return fmt.Errorf("stateloop run: --app names an application from -f module.yaml; %s has its own name", a.name)
			}
			return app.Run(cmd.Context(), f, a.build, cmd.OutOrStdout())
		},
	}
	f.Register(cmd.Flags())
	cmd.Flags().StringVar(&name, "app", "", "with -f and no APP: the application's name, i.e. its consumer group and the prefix of its topics (default: the ingresses' consumerGroupId, else the file name)")
	return cmd
}

func appFromArgs(args []string) (builtinApp, error) {
	available := "built-in applications: " + strings.Join(appNames(), ", ") +
		", or run a StateFun module.yaml with -f module.yaml"
	switch {
	case len(args) == 0:
		return builtinApp{}, fmt.Errorf("stateloop run: name the application to run, e.g. `stateloop run greeter`, or give a module.yaml with -f; %s", available)
	case len(args) > 1:
		return builtinApp{}, fmt.Errorf("stateloop run: got %d arguments %q, want one application name; %s", len(args), args, available)
	}
	a, ok := findApp(args[0])
	if !ok {
		return builtinApp{}, fmt.Errorf("stateloop run: unknown application %q; %s", args[0], available)
	}
	return a, nil
}
