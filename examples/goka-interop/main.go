// Command goka-interop connects Goka (github.com/lovoo/goka) with a
// stateloop application: a Goka emitter sends messages to a counter
// function, a Goka processor reads the function's egress topic, and a Goka
// view reads the function's state table. See README.md.
//
// Without --brokers it starts an embedded Kafka broker on a free port,
// with everything in memory.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/stateloop/stateloop/embedded"
)

// envBrokers gives the default of --brokers, as for the stateloop command.
const envBrokers = "STATELOOP_BROKERS"

func main() {
	embedded.ServeIfChild()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute parses the flags, runs the demo and returns the exit code.
func execute(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("goka-interop", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", getenv(envBrokers), "Kafka brokers, host:port,… (env "+envBrokers+"); empty starts an embedded broker")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	verbose := fs.Bool("verbose", false, "print goka's log to stderr")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var cfg Config
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	if *verbose {
		cfg.Logger = log.New(stderr, "goka: ", log.LstdFlags)
	}
	if len(cfg.Brokers) == 0 {
		b, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0"})
		if err != nil {
			fmt.Fprintln(stderr, "goka-interop:", err)
			return 1
		}
		defer b.Close()
		cfg.Brokers = []string{b.Addr()}
		fmt.Fprintf(stdout, "embedded Kafka broker listening on %s (in memory)\n", b.Addr())
	} else {
		fmt.Fprintf(stdout, "connecting to Kafka at %s\n", strings.Join(cfg.Brokers, ","))
	}
	if _, err := run(ctx, cfg, stdout); err != nil {
		fmt.Fprintln(stderr, "goka-interop:", err)
		return 1
	}
	return 0
}
