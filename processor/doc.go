// Package processor is the stateloop runtime: it runs the function types of
// a [functions.Registry] on Kafka, as described by a [topology.Topology],
// with exactly-once effects.
//
// # Concepts
//
// An application is one Kafka consumer group (topology.App). Each
// [Processor] is one member: it owns some partitions of the application's
// loop topic (messages to addresses, keyed by function id) and the same
// partitions of every function type's table (compacted changelog of the
// state, keyed by id). Ingress records are routed to addresses; functions
// are invoked one message at a time per address; their state changes,
// messages and egress records are written by one transactional producer,
// together with the consumed offsets, in transactions committed every
// commit interval (default 100ms) or commit count (default 5,000
// records). docs/architecture.md in the repository explains the cycle.
//
//	p, err := processor.New([]string{"127.0.0.1:9092"}, topo, reg,
//		processor.WithDataDir("./stateloop-data"))
//	if err != nil {
//		return err // every problem with the topology, registry and options
//	}
//	return p.Run(ctx)
//
// A [Sender] writes messages to addresses from outside the application.
//
// # Lifecycle
//
// [New] only checks its arguments. [Processor.Run] creates missing topics,
// joins the group, recovers the local state of its partitions from the
// tables (reading with read_committed up to the last stable offset), and
// processes until its context is cancelled; then it commits, leaves the
// group and returns. On a rebalance it commits, hands its partitions over
// and recovers the new ones. A restarted instance with the same data
// directory keeps its instance id, fences its previous producer, and
// catches its local state up from where it was. Run locks the data
// directory until it returns (see [DataDir]), so two instances never share
// one.
//
// # Errors
//
// Run returns an error only when it cannot go on: a data directory that
// another running instance holds (a *[DataDirInUseError], at once),
// brokers unreachable at start-up, topics that do not match the topology
// (a different partition count), or a local store that cannot be written. Bad input never stops
// it: records without a key, undecodable messages or state, messages to
// unknown function types, invocations that keep failing, and output
// records that cannot be produced go to the dead-letter topic <app>-dlq
// with the reason in the header stateloop.error.
//
// # Concurrency
//
// A Processor runs one session goroutine that invokes functions, so there is
// never more than one invocation per address. Stats may be called from any
// goroutine. Run must be called once.
package processor
