// Package codectest checks that a [codec.Codec] keeps the contract of the
// codec package, as testing/fstest does for file systems.
//
// Call [Run] from a test with the codec and a few representative values:
//
//	func TestOrderCodec(t *testing.T) {
//		codectest.Run(t, codec.JSON[Order](), []Order{{}, {ID: "o-1", Qty: 3}}, nil)
//	}
//
// Run checks that every sample round-trips, that values and bytes handed out
// by the codec stay valid while the codec is used again (no shared buffers),
// that the codec is safe for concurrent use, and that malformed input either
// fails with an error wrapping [codec.ErrCorrupt] or decodes to a value that
// encodes again. Pass an equal function for types where == or
// reflect.DeepEqual is the wrong notion of equality, such as protobuf
// messages (proto.Equal) or floats that may be NaN.
package codectest
