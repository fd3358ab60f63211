// Package codec turns Go values into bytes and back.
//
// # Concepts
//
// A [Codec] encodes one Go type. The package ships the encodings that
// Apache Flink Stateful Functions (StateFun) uses for its well-known types,
// so that a Go function and a remote StateFun SDK function can read each
// other's messages and state:
//
//   - [Bool], [Int32], [Int64], [Float32], [Float64] and [String] encode
//     a value as StateFun's protobuf wrapper message (field 1), the format of
//     the type names io.statefun.types/bool, /int, /long, /float, /double
//     and /string. A zero value encodes as zero bytes.
//   - [Text] is plain UTF-8 with no framing, for records that people write
//     with kcat or the Kafka console producer.
//   - [Bytes] passes bytes through unchanged.
//   - [JSON] and [Proto] encode user types.
//
// # Errors
//
// Decode returns an error wrapping [ErrCorrupt] for bytes that are not a
// valid encoding. Encode fails only where the underlying encoder does (JSON
// values that cannot be marshalled, invalid UTF-8 for [Text] and [String]).
//
// # Concurrency
//
// Every codec in this package is stateless and safe for concurrent use.
package codec
