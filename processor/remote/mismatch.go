package remote

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/stateloop/stateloop/processor/remote/pb"
	"github.com/stateloop/stateloop/processor/remote/pbv2"
)

// The two protocol versions share their field numbers, so a response of
// one parses as the other without an error: what gives the other version
// away is a field of another wire type, which protobuf keeps as an
// unknown field. A 3.x TypedValue (typename 1, has_value 2 as a varint,
// value 3) read as a 2.x Any (type_url 1, value 2 as bytes) leaves field 2
// or 3 unknown and the value empty; a 2.x Any read as a TypedValue leaves
// field 2, as bytes, unknown and the value empty. Applying such a
// response would deliver empty messages and store empty state without a
// word, so the client fails the invocation instead, naming the likely
// version mismatch.

// checkNot3 fails a response to a Protocol2 request that shows the 3.x
// protocol: an IncompleteInvocationContext (field 101), or any field the
// 2.x messages do not have. StateFun 2.x will not change, so every unknown
// field is a mismatch.
func checkNot3(from *pbv2.FromFunction) error {
	var detail string
	walk(from.ProtoReflect(), "FromFunction", func(m protoreflect.Message, path string) bool {
		u := m.GetUnknown()
		if len(u) == 0 {
			return true
		}
		num, typ, _ := protowire.ConsumeTag(u)
		switch {
		case path == "FromFunction" && num == 101:
			detail = "an IncompleteInvocationContext, asking for state the request did not carry"
		case m.Descriptor().FullName() == "google.protobuf.Any":
			detail = fmt.Sprintf("%s is a TypedValue of type %q, read as an Any without its value", path, m.Interface().(interface{ GetTypeUrl() string }).GetTypeUrl())
		default:
			detail = fmt.Sprintf("%s has a field %d (wire type %d) that StateFun 2.x does not have", path, num, typ)
		}
		return false
	})
	if detail == "" {
		return nil
	}
	return mismatch(Protocol2, detail)
}

// checkNot2 fails a response to a Protocol3 request whose TypedValues are
// 2.x Anys: a TypedValue with field 2 as bytes (an Any's value). Other
// unknown fields are let through, for SDKs newer than this client.
func checkNot2(from *pb.FromFunction) error {
	var detail string
	walk(from.ProtoReflect(), "FromFunction", func(m protoreflect.Message, path string) bool {
		if m.Descriptor() != (&pb.TypedValue{}).ProtoReflect().Descriptor() || !hasField(m.GetUnknown(), 2, protowire.BytesType) {
			return true
		}
		detail = fmt.Sprintf("%s is a protobuf Any of type %q, read as a TypedValue without its value", path, m.Interface().(*pb.TypedValue).GetTypename())
		return false
	})
	if detail == "" {
		return nil
	}
	return mismatch(Protocol3, detail)
}

// looksLikeTypedValue reports whether the state bytes a Protocol2 function
// wrote are a 3.x TypedValue rather than an Any: they have has_value, a
// varint field 2, where an Any has its value as bytes.
func looksLikeTypedValue(b []byte) bool {
	return hasField(b, 2, protowire.VarintType)
}

// hasField reports whether the encoded message b has field num with wire
// type typ; it stops at the first malformed field.
func hasField(b []byte, num protowire.Number, typ protowire.Type) bool {
	for len(b) > 0 {
		n, t, l := protowire.ConsumeField(b)
		if l < 0 {
			return false
		}
		if n == num && t == typ {
			return true
		}
		b = b[l:]
	}
	return false
}

// walk calls visit for m and every message in it, depth first, with its
// path, until visit returns false.
func walk(m protoreflect.Message, path string, visit func(protoreflect.Message, string) bool) bool {
	if !visit(m, path) {
		return false
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = walk(l.Get(i).Message(), fmt.Sprintf("%s.%s[%d]", path, fd.Name(), i), visit)
			}
		default:
			ok = walk(v.Message(), path+"."+string(fd.Name()), visit)
		}
		return ok
	})
	return ok
}

// mismatch is the error of a response in the other protocol version than
// declared, the endpoint being declared for p.
func mismatch(declared Protocol, detail string) error {
	if declared == Protocol2 {
		return protocolError("the function answered in the StateFun 3.x protocol (%s), but the module declares it as a StateFun 2.x function (a version \"2.0\" file): "+
			"it probably runs a StateFun 3.x SDK, which got garbled messages and state; declare it in a kind/spec module file (kind io.statefun.endpoints.v2/http), "+
			"or serve it with the StateFun 2.x SDK (apache-flink-statefun 2.x)", detail)
	}
	return protocolError("the function answered in the StateFun 2.x protocol (%s), but the module declares it as a StateFun 3.x endpoint: "+
		"it probably runs a StateFun 2.x SDK (messages as protobuf Any, state by context[name]), which got empty messages; "+
		"declare it in a StateFun 2.x module file (version: \"2.0\", with its states), or move it to a StateFun 3.x SDK (see docs/statefun.md)", detail)
}
