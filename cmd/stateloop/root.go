package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stateloop/stateloop/app"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "stateloop",
		Short: "Stateful functions on Kafka",
		Long: `stateloop runs stateful functions, the programming model of Apache Flink
Stateful Functions (StateFun), on Kafka alone: function state lives in
compacted Kafka topics, messages between functions travel through Kafka, and
Kafka transactions make every effect happen exactly once.

Without --brokers, stateloop run starts an embedded Kafka broker, so you can
try it with nothing else installed.`,
		Example: `  # terminal 1: run the greeter example with an embedded broker
  stateloop run greeter

  # terminal 2: greet Alice and read the greeting
  stateloop send --topic names --key Alice Alice
  stateloop consume --topic greetings -n 1`,
	}
	root.AddCommand(newRunCommand(), newBrokerCommand(), newSendCommand(), newConsumeCommand(), newStateCommand(),
		newDLQCommand(), newTimersCommand(), newDescribeCommand(), newVersionCommand())
	return root
}

// brokersFlag adds --brokers for commands that talk to a running Kafka:
// its default is STATELOOP_BROKERS, else the embedded broker's address.
func brokersFlag(fs *pflag.FlagSet, p *[]string) {
	def := app.SplitBrokers(os.Getenv(app.EnvBrokers))
	if len(def) == 0 {
		def = []string{app.DefaultListen}
	}
	fs.StringSliceVar(p, "brokers", def, "Kafka brokers, comma-separated host:port (env "+app.EnvBrokers+")")
}
