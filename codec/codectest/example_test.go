package codectest_test

import (
	"testing"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/codec/codectest"
)

type order struct {
	ID  string `json:"id"`
	Qty int    `json:"qty"`
}

// A codec for a user type is checked with a few representative values.
func ExampleRun() {
	// In a test file:
	_ = func(t *testing.T) {
		codectest.Run(t, codec.JSON[order](), []order{{}, {ID: "o-1", Qty: 3}}, nil)
	}
}

// A fuzz target checks one input at a time.
func ExampleCheckDecode() {
	// In a test file:
	_ = func(f *testing.F) {
		f.Add([]byte(`{"id":"o-1","qty":3}`))
		f.Fuzz(func(t *testing.T, b []byte) {
			codectest.CheckDecode(t, codec.JSON[order](), b, nil)
		})
	}
}
