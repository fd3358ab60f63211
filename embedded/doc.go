// Package embedded runs the Kafka broker that `stateloop run` uses when the
// user names no brokers: a kfake broker (github.com/twmb/franz-go/pkg/kfake)
// on a loopback address, optionally persisting its log, group offsets and
// transaction state in a data directory.
//
// # Concepts
//
// A [Broker] is one single-node kfake cluster listening on one loopback
// address ([Config.Listen], 127.0.0.1:9092 by default). It creates topics
// on first use ([Config.Partitions] partitions each) and speaks enough of
// the Kafka protocol for idempotent and transactional producers, consumer
// groups and read_committed consumers, so stateloop and any other Kafka
// client (sarama, franz-go, the Kafka CLI tools) can use it. Without
// [Config.DataDir] everything lives in memory and is gone when the broker
// stops.
//
// By default the broker runs in a child process: [Start] re-executes the
// running binary (os.Executable) with the environment variable
// STATELOOP_EMBEDDED_BROKER set, and [ServeIfChild], called first thing in
// main, turns that process into the broker. [Config.InProcess] runs kfake
// inside the calling process instead, which is only meant for tests.
//
// The child process exists for crash atomicity. kfake persists a
// transaction commit step by step: EndTxn writes the commit marker to each
// partition of the transaction in turn and then the transaction's group
// offsets. If the process running kfake is killed half-way (kill -9, OOM
// killer), the data directory keeps some markers and loses others, or keeps
// the records and loses the offset commit, and exactly-once processing is
// broken after the restart. A request that kfake has started it always
// finishes, and kfake.Cluster.Close writes a consistent snapshot. So
// stateloop keeps kfake out of its own process: a kill -9 of stateloop only
// cuts its connections, the broker child finishes the request it is
// handling, notices that its parent is gone and closes kfake gracefully.
// Transactions that were open at that moment stay open in the snapshot and
// are aborted when the next stateloop re-initialises its transactional
// producers (or when their transaction timeout expires).
//
// The embedded broker sets a few broker configs that differ from kfake's
// defaults because the data directory is treated as a database, not a
// cache: log.retention.ms is -1 (kfake would otherwise delete records
// older than 7 days from every topic, compacted ones included, once any
// topic is compacted) and offsets.retention.minutes is about 100 years
// (kfake would otherwise drop the committed offsets of a group without
// members 7 days after the last commit). group.min.session.timeout.ms is
// 100ms so that tests can use short sessions.
//
// # What the broker adds to kfake
//
// The broker installs two fixes through kfake's control functions, which
// see every request of a kind before kfake handles it:
//
//   - Consumer group sessions. kfake never starts the session of a member
//     whose JoinGroup answer it could not deliver (the member died while it
//     joined), so the member stays in the group for good and the
//     partitions it is given are never consumed; and it expires members
//     that wait for their SyncGroup answer without answering them. The
//     broker watches each generation of a group from its first SyncGroup
//     request until the group is stable, heartbeating on behalf of the
//     members that wait for their SyncGroup answer and once on behalf of
//     every other member: each member has a session, dead ones expire a
//     session timeout later, as on Kafka.
//   - Answers Kafka's Java tools read. kfake leaves a few fields null that
//     the Java admin client reads without a null check (DescribeTopicPartitions,
//     CreateTopics, DescribeClientQuotas): the broker forwards such
//     requests to kfake over its own connection, fills the fields and
//     answers, so kafka-topics, kafka-consumer-groups and the other tools
//     work (docs/kafka.md lists them).
//
// # Lifecycle
//
// [Start] validates the configuration, takes the data directory, starts
// kfake and returns once the broker accepts TCP connections on
// [Broker.Addr]. The context only bounds this start-up; cancelling it later
// does not stop the broker. [Broker.Close] stops the broker gracefully and
// waits for it: in-process it calls kfake's Close, for a child it closes
// the pipe the child watches, sends it SIGTERM and waits for it to exit
// (after two minutes it kills the child and says so in its error).
// [Broker.Done] is closed when the broker has stopped, whether through
// Close or because the child died, and [Broker.Err] then says why.
//
// The child stops kfake gracefully (kfake.Cluster.Close, which persists the
// data directory) and exits 0 when any of these happen:
//   - end of file on the pipe whose write end only the parent holds (file
//     descriptor 3 in the child): the parent closed it or died;
//   - SIGTERM, which on Linux the kernel also sends when the parent dies
//     (the parent death signal, set with SysProcAttr.Pdeathsig from an OS
//     thread that stays locked while the child lives, because the kernel
//     ties the signal to the thread that forked the child);
//   - SIGINT or SIGHUP.
//
// The child ignores further signals while kfake closes, so a second Ctrl+C
// cannot cut the snapshot short; it runs in its own process group, so a
// Ctrl+C in a terminal reaches only stateloop, which can finish its last
// transaction before it closes the broker.
//
// The data directory holds a lock file, broker.lock, locked with flock by
// the process that runs kfake for as long as it runs. A new broker on the
// same directory waits up to 30 seconds for the previous owner (typically
// the child of a stateloop that was just killed, still writing its
// snapshot) to release it, and logs that it waits.
//
// # Errors
//
// All errors start with "embedded: ". [Start] returns an error that wraps
// [ErrPortInUse] when the listen port is taken, and one that wraps
// [ErrDataDirInUse] when another running broker still holds the data
// directory after the wait; both messages say what to do. A Listen address
// that is not loopback (127.0.0.0/8, ::1 or localhost) is refused, as the
// broker has no authentication. A child that exits before it is ready, or
// later without being asked to, is reported with its exit status and its
// last log lines; a child that was started by a binary whose main does not
// call [ServeIfChild] shows up this way.
//
// # Concurrency
//
// The methods of a [Broker] may be called from any goroutine; Close may be
// called more than once and always returns the same result. Several
// brokers may run in one process as long as their ports and data
// directories differ. [ServeIfChild] must run before the program starts
// goroutines or parses flags, since in a broker child it never returns.
package embedded
