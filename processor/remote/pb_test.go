package remote_test

import (
	"strings"
	"testing"

	_ "github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun" // registers StateFun's descriptors
	"github.com/stateloop/stateloop/processor/remote/pb"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestWireMatchesStateFun compares our generated messages with the ones
// the official Go SDK registers (io.statefun.sdk.reqreply), both linked in
// this test binary without a registry conflict: same messages, nesting,
// field numbers, kinds, cardinalities, oneofs and enum values. Only the
// proto package differs, which never reaches the wire.
func TestWireMatchesStateFun(t *testing.T) {
	ours := map[string]protoreflect.MessageDescriptor{
		"Address":      (&pb.Address{}).ProtoReflect().Descriptor(),
		"TypedValue":   (&pb.TypedValue{}).ProtoReflect().Descriptor(),
		"ToFunction":   (&pb.ToFunction{}).ProtoReflect().Descriptor(),
		"FromFunction": (&pb.FromFunction{}).ProtoReflect().Descriptor(),
	}
	for name, our := range ours {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName("io.statefun.sdk.reqreply." + protoreflect.FullName(name))
		if err != nil {
			t.Fatalf("StateFun's %s is not registered: %v", name, err)
		}
		compareMessages(t, name, d.(protoreflect.MessageDescriptor), our)
	}
}

func relName(d protoreflect.Descriptor) string {
	return strings.TrimPrefix(string(d.FullName()), string(d.ParentFile().Package())+".")
}

func compareMessages(t *testing.T, path string, want, got protoreflect.MessageDescriptor) {
	t.Helper()
	if relName(want) != relName(got) {
		t.Errorf("%s: message %s, want %s", path, relName(got), relName(want))
	}
	if want.Fields().Len() != got.Fields().Len() {
		t.Errorf("%s: %d fields, want %d", path, got.Fields().Len(), want.Fields().Len())
	}
	for i := range want.Fields().Len() {
		wf := want.Fields().Get(i)
		gf := got.Fields().ByNumber(wf.Number())
		fp := path + "." + string(wf.Name())
		if gf == nil {
			t.Errorf("%s: field number %d missing", fp, wf.Number())
			continue
		}
		if wf.Name() != gf.Name() || wf.Kind() != gf.Kind() || wf.Cardinality() != gf.Cardinality() {
			t.Errorf("%s: got %s %v %v, want %s %v %v", fp, gf.Name(), gf.Cardinality(), gf.Kind(), wf.Name(), wf.Cardinality(), wf.Kind())
		}
		if (wf.ContainingOneof() == nil) != (gf.ContainingOneof() == nil) ||
			wf.ContainingOneof() != nil && wf.ContainingOneof().Name() != gf.ContainingOneof().Name() {
			t.Errorf("%s: oneof membership differs", fp)
		}
		switch wf.Kind() {
		case protoreflect.MessageKind:
			if relName(wf.Message()) != relName(gf.Message()) {
				t.Errorf("%s: type %s, want %s", fp, relName(gf.Message()), relName(wf.Message()))
			}
		case protoreflect.EnumKind:
			compareEnums(t, fp, wf.Enum(), gf.Enum())
		}
	}
	if want.Messages().Len() != got.Messages().Len() {
		t.Errorf("%s: %d nested messages, want %d", path, got.Messages().Len(), want.Messages().Len())
	}
	for i := range want.Messages().Len() {
		wm := want.Messages().Get(i)
		gm := got.Messages().ByName(wm.Name())
		if gm == nil {
			t.Errorf("%s: nested message %s missing", path, wm.Name())
			continue
		}
		compareMessages(t, path+"."+string(wm.Name()), wm, gm)
	}
}

func compareEnums(t *testing.T, path string, want, got protoreflect.EnumDescriptor) {
	t.Helper()
	if want.Values().Len() != got.Values().Len() {
		t.Errorf("%s: %d enum values, want %d", path, got.Values().Len(), want.Values().Len())
	}
	for i := range want.Values().Len() {
		wv := want.Values().Get(i)
		gv := got.Values().ByNumber(wv.Number())
		if gv == nil || gv.Name() != wv.Name() {
			t.Errorf("%s: enum value %d = %v, want %s", path, wv.Number(), gv, wv.Name())
		}
	}
}
