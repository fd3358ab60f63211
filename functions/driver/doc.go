// Package driver is what a runtime of stateful functions uses, as
// database/sql/driver is what a database driver uses: the stateloop
// processor, its StateFun HTTP client (processor/remote) and the
// in-memory harness functionstest. Function authors import package
// functions and need nothing from here.
//
// # Concepts
//
// A runtime keeps, per address, the [StoredValue]s of its declared state:
// bytes with the type name they were written with and, for an expiring
// state, the time they expire. To deliver a message it builds an
// [Invocation] (target, caller, message, stored values) and calls
// [Invoke], which runs the function registered in a [functions.Registry]
// and returns its [Effects]; for a remote function (a StateFun SDK behind
// HTTP), processor/remote turns the function's answer into the same
// Effects. Effects are recorded, not performed: the state changes
// ([StateChange]), the messages to addresses and egresses, the delayed
// messages and their cancellations ([DelayedMessage]).
//
// [States] lists the state a function type declares and [Expirations]
// picks out the expiring ones; [Unexpired] and [ApplyState] are the rules
// of expiring state.
//
// # Contract
//
// A runtime that runs functions the way stateloop does:
//
//   - Calls [Invoke] one message at a time per address, with
//     Invocation.State = [Unexpired](stored values, now): a function never
//     sees an expired value.
//   - On an error, applies none of the effects: it retries the message
//     (unless [functions.IsPermanent] says not to) and then dead-letters
//     it. On success, applies all of them, together with consuming the
//     message (the processor in one Kafka transaction).
//   - Computes the address's new values with [ApplyState] from the values
//     the invocation saw and Effects.State, and stores them when it says
//     so. This is the one place of the rules for state: a deleted value is
//     removed, an after-write expiry moves when its value is written, an
//     after-call expiry at every invocation, and an invocation that changes
//     nothing is not written unless it moves an after-call expiry.
//   - Sends Effects.Messages and Effects.Egress in order, with the target
//     as the caller of each message, and keeps Effects.Delayed until they
//     are due; a token belongs to the sending address, a message with the
//     token of a waiting one replaces it, and cancelling an unknown or
//     delivered token does nothing.
//
// functionstest follows the same contract in memory, so a function behaves
// the same in its tests as in production.
package driver
