// Package gokainterop connects Goka applications (github.com/lovoo/goka)
// with a stateloop application. Import it under its name, so that it does
// not shadow goka:
//
//	import (
//		"github.com/lovoo/goka"
//		gokainterop "github.com/stateloop/stateloop/goka"
//	)
//
// # Concepts
//
// stateloop is built on Goka's design: function type T of application A is
// the Goka group A-<escaped T> ([Group]), and its state is that group's
// table, the compacted topic A-<escaped T>-table ([Table]), keyed by
// function id. Messages to functions travel on the stream A-loop
// ([LoopStream]), keyed by function id too. stateloop puts an id on the
// partition FNV-1a(id) mod N, which is what Goka's default hasher (and
// sarama's hash partitioner) computes, so a Goka emitter, view or processor
// with default settings finds the same partitions. The loop topic and the
// tables have the topology's partition count; Goka's topics that are
// co-partitioned with them must have it too. Pass this package the
// topology with the partition count the application really runs with (its
// Partitions, or the --partitions it was started with): [Hasher] needs it.
//
// The package covers three directions:
//
//   - A goka.View reads the state of a function type: [NewView], or
//     goka.NewView with [Table], [StateCodec] and [ViewOptions]; then
//     [Get] or [Value] decode one value with its functions.State or
//     functions.Type.
//   - A goka.Emitter (or a goka processor's output) sends messages to
//     function addresses: [NewEmitter] and [Emit] / [EmitSync], or
//     [MessageCodec] on the loop stream with the function id as key.
//   - A goka processor consumes an egress topic: [ProcessorOptions] make
//     its consumers read read_committed; [Codec] turns a stateloop codec
//     into a goka.Codec for the egress values.
//
// # Lifecycle
//
// Start the stateloop application first: it creates the loop topic, the
// tables and the egress topics with the right partition counts. A goka
// view or processor refuses to start on a topic that does not exist, and
// an emitter to a missing loop topic may make the broker create it with
// its default partition count, which the application then refuses. Run a
// view and wait for goka.View.WaitRunning before reading it; it then
// follows new commits.
//
// # Transactions
//
// stateloop writes tables, egress topics and its loop topic only in Kafka
// transactions, and aborts some of them (a failed commit, a crash, a
// rebalance). Everything that reads what stateloop wrote must read
// read_committed, or it sees records that never happened. Goka reads
// read_uncommitted by default; [ViewOptions] and [ProcessorOptions] fix
// that, and [ViewOptions] also fixes the end of a view's recovery, which
// goka would otherwise wait for forever (see package
// github.com/stateloop/stateloop/gokaview, which this package
// builds on). Records a Goka emitter writes need no transaction: stateloop
// reads non-transactional records as they are.
//
// # Errors
//
// The codecs return errors for values of the wrong Go type and for bytes
// that do not decode; [Value] and [Get] return an error wrapping a
// *functions.DecodeError for a value of another type. Goka and sarama
// errors are passed on as they are.
//
// # Concurrency
//
// The codecs are stateless and safe for concurrent use; so are the
// functions of the package. Views, emitters and processors are goka's:
// see goka's documentation.
//
// docs/goka.md has the whole picture and the pitfalls.
package gokainterop
