package codec_test

import (
	"errors"
	"fmt"

	"github.com/stateloop/stateloop/codec"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A StateFun string (io.statefun.types/string) is a protobuf StringWrapper:
// field 1, length-delimited.
func ExampleString() {
	c := codec.String()
	b, _ := c.Encode("Bob")
	fmt.Printf("% x\n", b)
	s, _ := c.Decode(b)
	fmt.Println(s)
	// Output:
	// 0a 03 42 6f 62
	// Bob
}

// Zero values encode as no bytes at all, as in proto3, and no bytes decode
// as the zero value.
func ExampleInt64() {
	c := codec.Int64()
	b, _ := c.Encode(5)
	fmt.Printf("% x\n", b)
	b, _ = c.Encode(0)
	fmt.Println(len(b))
	n, _ := c.Decode(nil)
	fmt.Println(n)
	// Output:
	// 09 05 00 00 00 00 00 00 00
	// 0
	// 0
}

func ExampleJSON() {
	type order struct {
		ID  string `json:"id"`
		Qty int    `json:"qty"`
	}
	c := codec.JSON[order]()
	b, _ := c.Encode(order{ID: "o-1", Qty: 2})
	fmt.Println(string(b))
	o, _ := c.Decode([]byte("{\"id\":\"o-2\",\"qty\":5}\n"))
	fmt.Printf("%+v\n", o)
	// Output:
	// {"id":"o-1","qty":2}
	// {ID:o-2 Qty:5}
}

// Proto takes the message struct type and works with pointers to it.
func ExampleProto() {
	c := codec.Proto[wrapperspb.StringValue]()
	b, _ := c.Encode(wrapperspb.String("Bob"))
	m, _ := c.Decode(b)
	fmt.Println(m.GetValue())
	// Output:
	// Bob
}

// Decode errors caused by malformed bytes wrap ErrCorrupt.
func ExampleErrCorrupt() {
	_, err := codec.Text().Decode([]byte{0xff})
	fmt.Println(errors.Is(err, codec.ErrCorrupt))
	_, err = codec.Int32().Decode([]byte{0x0d, 0x05})
	fmt.Println(errors.Is(err, codec.ErrCorrupt))
	// Output:
	// true
	// true
}
