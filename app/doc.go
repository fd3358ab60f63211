// Package app is the command-line plumbing shared by `stateloop run` and by
// the main function of any Go program that runs a stateloop application, so
// that both take the same flags and behave the same way.
//
// # Concepts
//
// An application is a [topology.Topology] and a [functions.Registry], made
// by a build function. [Flags] holds the command-line settings (brokers,
// data directory, partitions, logging); [Flags.Register] adds them to a
// flag set and [Run] runs the application with them. A user's main is one
// line:
//
//	func main() { app.Main(greeter.Build) }
//
// which gives the program the flags --brokers, --listen, --data-dir,
// --partitions, --commit-interval, --instance-id, --threads,
// --replication-factor, --min-insync-replicas, --log-level and
// --log-format (and the --http ones), and a --help text. Settings that have no flag are given
// as options:
//
//	app.Main(greeter.Build, app.WithProcessorOptions(processor.WithRetries(5, time.Second)))
//
// Without --brokers (and without the environment variable
// STATELOOP_BROKERS), [Run] starts an embedded Kafka broker (see
// [embedded.Start]) on --listen, with its data in <data-dir>/broker, so the
// application works with nothing installed. The processor keeps its local
// state store and instance id in <data-dir>.
//
// # Lifecycle
//
// [Run] starts the embedded broker if needed, starts the processor, prints
// progress lines (where Kafka is, when the application is ready) and runs
// until its context is cancelled. It then stops the processor, which
// commits its last transaction, and only then closes the embedded broker.
// [Main] and [Execute] cancel that context on SIGINT or SIGTERM; a second
// signal kills the process.
//
// # Errors
//
// [Flags.Validate] reports every problem of the flags at once. [Run]
// returns an error when the flags are invalid, the application's topology
// is invalid, Kafka cannot be reached, the embedded broker cannot start or
// stops by itself, or the processor fails. Errors start with "app: " and say
// what to do next. [Main] prints them as "error: ..." and exits with status
// 1.
//
// # Concurrency
//
// [Run] may be called from any goroutine; it blocks until the application
// stops. [Main] owns the process.
package app
