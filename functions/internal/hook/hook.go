// Package hook hands package functions' invocation engine to package
// functions/driver without an exported name in functions.
//
// functions/driver imports functions, so functions cannot import driver or
// name its types; and what a runtime needs (invoking a registered function
// with stored state) must not be part of the API a function author sees.
// So functions stores its engine here in an init function, and driver,
// whose package initialisation runs after functions', takes it out and
// asserts its type once. The same pattern connects grpc and its internal
// packages.
package hook

// Invoke is the engine of package functions, set by functions' init. Its
// dynamic type is
//
//	func(ctx context.Context, reg *functions.Registry, target functions.Address,
//		caller *functions.Address, msg functions.Message, state map[string]driver.StoredValue,
//	) ([]driver.StateChange, []functions.OutgoingMessage, []functions.EgressMessage, []driver.DelayedMessage,
//		[]functions.Message, error)
//
// (driver's StoredValue, StateChange and DelayedMessage are aliases of
// unnamed struct types that functions spells too, so both packages name
// the same types).
var Invoke any
