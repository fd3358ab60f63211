package codec

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Display decodes a stored value for people to read, by its type name:
//
//   - StateFun's built-in types (io.statefun.types/string, int, long,
//     bool, float, double) as their value;
//   - a protobuf message type ("type.googleapis.com/pkg.Msg") whose
//     descriptor is linked into the program, as its protojson form;
//   - bytes that are JSON, as that JSON;
//   - text that is valid UTF-8 without control characters, as text;
//   - anything else as {"base64": "..."}.
//
// The result marshals to JSON as is. It never fails: a value that does not
// decode as its type says falls through to the later forms.
func Display(typeName string, b []byte) any {
	switch typeName {
	case "io.statefun.types/string":
		if v, err := String().Decode(b); err == nil {
			return v
		}
	case "io.statefun.types/int":
		if v, err := Int32().Decode(b); err == nil {
			return v
		}
	case "io.statefun.types/long":
		if v, err := Int64().Decode(b); err == nil {
			return v
		}
	case "io.statefun.types/bool":
		if v, err := Bool().Decode(b); err == nil {
			return v
		}
	case "io.statefun.types/float":
		if v, err := Float32().Decode(b); err == nil {
			return v
		}
	case "io.statefun.types/double":
		if v, err := Float64().Decode(b); err == nil {
			return v
		}
	}
	if name, ok := strings.CutPrefix(typeName, "type.googleapis.com/"); ok {
		if mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name)); err == nil {
			m := dynamicpb.NewMessage(mt.Descriptor())
			if err := proto.Unmarshal(b, m); err == nil {
				if j, err := protojson.Marshal(m); err == nil {
					return json.RawMessage(j)
				}
			}
		}
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return r < ' ' && r != '\n' && r != '\t' }) {
		return string(b)
	}
	return map[string]string{"base64": base64.StdEncoding.EncodeToString(b)}
}
