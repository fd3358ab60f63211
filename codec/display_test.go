package codec_test

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stateloop/stateloop/codec"
)

func TestDisplayShowsValuesByTheirType(t *testing.T) {
	enc := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ts, err := proto.Marshal(timestamppb.New(timestamppb.Now().AsTime().Truncate(1e9)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, typeName string
		value          []byte
		want           string // JSON of Display's result
	}{
		{"string", "io.statefun.types/string", enc(codec.String().Encode("héllo")), `"héllo"`},
		{"long", "io.statefun.types/long", enc(codec.Int64().Encode(-42)), `-42`},
		{"bool", "io.statefun.types/bool", enc(codec.Bool().Encode(true)), `true`},
		{"json", "shop/order", []byte(`{"id":7}`), `{"id":7}`},
		{"text", "shop/note", []byte("plain words"), `"plain words"`},
		{"binary", "shop/blob", []byte{0, 1, 2, 0xff}, `{"base64":"AAEC/w=="}`},
		{"a long that is not one", "io.statefun.types/long", []byte{0xff}, `{"base64":"/w=="}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(codec.Display(tc.typeName, tc.value))
			if err != nil || string(got) != tc.want {
				t.Errorf("Display(%s, %x) = %s (%v), want %s", tc.typeName, tc.value, got, err, tc.want)
			}
		})
	}
	got, err := json.Marshal(codec.Display("type.googleapis.com/google.protobuf.Timestamp", ts))
	if err != nil || len(got) < 3 || got[0] != '"' {
		t.Errorf("a known protobuf type: %s (%v), want its protojson (a timestamp string)", got, err)
	}
}
