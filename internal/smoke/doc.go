// Package smoke is stateloop's version of Apache Flink StateFun's smoke
// end-to-end test (statefun-smoke-e2e-*): random commands drive one
// function type through state changes, messages between ids, delayed
// messages, cancellations and egress records while its worker processes are
// killed with SIGKILL; at the end
// every id must report exactly the count of increments it was sent. A count
// above it is a duplicated effect, a count that never gets there a lost one.
// `stateloop-smoke` runs it; docs/smoke.md explains how to read it.
//
// # Concepts
//
// The messages ([SourceCommand], [Commands], [Command], [VerificationResult])
// are upstream's commands.proto, encoded by hand with protowire, with the
// same field and type names, so StateFun's SDK smoke functions could run
// against the same topics.
//
// A [Generator] makes seeded random command trees, a [Tracker] adds up the
// increments each id must see and the longest [Chain] of (delayed)
// messages on the way to one. The application ([Topology], [Registry]) is
// the function [FunctionType], whose state [Count] counts increments; its
// ingress is the topic <app>-commands (key = target id), its egresses
// <app>-discard and <app>-verification.
//
// # Lifecycle
//
// [Run] is the driver: it starts Config.Workers worker processes through
// the caller's [StartFunc] (each runs [ServeWorker]), produces the commands
// with an idempotent producer (counting only acknowledged ones), kills a
// random worker with SIGKILL Config.Kills times and restarts it, then sends
// Verify{expected} to every id every 2 seconds and reads the verification
// egress with read_committed until every id matches. With delayed messages
// it then waits as long as the longest chain of delayed messages can take
// (Config.MaxDelay each) and passes only when every id reports its count
// once more, so that a delayed message delivered twice, late, is still
// seen.
//
// # Errors
//
// Run returns a *[DuplicateError] as soon as an id reports more than its
// expected count and a *[LossError] naming the ids that did not converge
// by the timeout (or, with delayed messages, by the end of the wait for
// them, if that is later).
//
// # Concurrency
//
// A [Generator] and a [Tracker] are for one goroutine. Run may be called
// concurrently with different application names.
package smoke
