package remote

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"github.com/stateloop/stateloop/processor/remote/pbv2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// FuzzDecodeResponse feeds arbitrary bytes to Invoke as the function's
// response (to every round of it): it must not panic, and what it accepts
// must obey the protocol's rules.
func FuzzDecodeResponse(f *testing.F) {
	tv := func(t, v string) *pb.TypedValue { return &pb.TypedValue{Typename: t, HasValue: true, Value: []byte(v)} }
	to := &pb.Address{Namespace: "example", Type: "printer", Id: "Bob"}
	for _, m := range []*pb.FromFunction{
		{},
		{Response: &pb.FromFunction_IncompleteInvocationContext_{IncompleteInvocationContext: &pb.FromFunction_IncompleteInvocationContext{
			MissingValues: []*pb.FromFunction_PersistedValueSpec{
				{StateName: "seen", TypeTypename: "io.statefun.types/int"},
				{StateName: "ttl", TypeTypename: "a/b", ExpirationSpec: &pb.FromFunction_ExpirationSpec{Mode: pb.FromFunction_ExpirationSpec_AFTER_INVOKE, ExpireAfterMillis: 1000}},
			}}}},
		{Response: &pb.FromFunction_InvocationResult{InvocationResult: &pb.FromFunction_InvocationResponse{
			StateMutations: []*pb.FromFunction_PersistedValueMutation{
				{MutationType: pb.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen", StateValue: tv("io.statefun.types/int", "\x0d\x01\x00\x00\x00")},
				{StateName: "ttl"},
			},
			OutgoingMessages:   []*pb.FromFunction_Invocation{{Target: to, Argument: tv("io.statefun.types/string", "\x0a\x02hi")}},
			DelayedInvocations: []*pb.FromFunction_DelayedInvocation{{DelayInMs: 5, Target: to, Argument: tv("a/b", ""), CancellationToken: "t"}, {IsCancellationRequest: true, CancellationToken: "t"}},
			OutgoingEgresses:   []*pb.FromFunction_EgressMessage{{EgressNamespace: "e", EgressType: "out", Argument: tv("a/b", "x")}},
		}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := New(Config{URL: "http://functions.test/{function.name}"})
		if err != nil {
			t.Fatal(err)
		}
		c.hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp := response(200, http.Header{"Content-Type": {"application/octet-stream"}}, body)
			resp.Request = r
			return resp, nil
		})
		state := map[string]driver.StoredValue{"seen": {TypeName: "io.statefun.types/int", Value: []byte{0x0d, 1, 0, 0, 0}}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		res, err := c.Invoke(ctx, bob, state, []Call{{Argument: functions.StringType.Of("x")}})
		if err != nil {
			if !IsPermanent(err) && !errors.Is(err, ErrStateType) {
				t.Fatalf("error %v is neither permanent nor a state type error", err)
			}
			return
		}
		for _, s := range res.State {
			i, ok := slices.BinarySearchFunc(res.Specs, s.Name, cmpSpecName)
			if !ok || res.Specs[i].TypeName != s.Value.TypeName {
				t.Fatalf("state change %+v does not match the specs %+v", s, res.Specs)
			}
		}
		for _, m := range res.Messages {
			if m.To.Validate() != nil || checkTypeName(m.Message) != nil {
				t.Fatalf("invalid message %+v", m)
			}
		}
		for _, d := range res.Delayed {
			if d.Cancel && d.Token == "" || !d.Cancel && (d.Delay < 0 || d.To.Validate() != nil || checkTypeName(d.Message) != nil) {
				t.Fatalf("invalid delayed message %+v", d)
			}
		}
		for _, e := range res.Egress {
			if _, err := functions.ParseTypeName(string(e.Egress)); err != nil || checkTypeName(e.Message) != nil {
				t.Fatalf("invalid egress message %+v", e)
			}
		}
	})
}

func checkTypeName(m functions.Message) error {
	_, err := functions.ParseTypeName(string(m.TypeName()))
	return err
}

// FuzzDecodeResponse2 is FuzzDecodeResponse for Protocol2: no panic, only
// permanent errors, and what is accepted obeys the protocol's rules.
func FuzzDecodeResponse2(f *testing.F) {
	anyOf := func(url, v string) *anypb.Any { return &anypb.Any{TypeUrl: url, Value: []byte(v)} }
	to := &pbv2.Address{Namespace: "example", Type: "printer", Id: "Bob"}
	for _, m := range []proto.Message{
		&pbv2.FromFunction{},
		&pbv2.FromFunction{Response: &pbv2.FromFunction_InvocationResult{InvocationResult: &pbv2.FromFunction_InvocationResponse{
			StateMutations: []*pbv2.FromFunction_PersistedValueMutation{
				{MutationType: pbv2.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen", StateValue: []byte("\x0a\x03a/b\x12\x01x")},
				{StateName: "ttl"},
			},
			OutgoingMessages:   []*pbv2.FromFunction_Invocation{{Target: to, Argument: anyOf("type.googleapis.com/a.B", "\x08\x01")}},
			DelayedInvocations: []*pbv2.FromFunction_DelayedInvocation{{DelayInMs: 5, Target: to, Argument: anyOf("a/b", "")}},
			OutgoingEgresses:   []*pbv2.FromFunction_EgressMessage{{EgressNamespace: "e", EgressType: "out", Argument: anyOf("a/b", "x")}},
		}}},
		&pb.FromFunction{Response: &pb.FromFunction_IncompleteInvocationContext_{IncompleteInvocationContext: &pb.FromFunction_IncompleteInvocationContext{}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	declared := []driver.StateInfo{{Name: "seen"}, {Name: "ttl", Expiration: functions.Expiration{Mode: functions.ExpireAfterWrite, After: time.Second}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := New(Config{URL: "http://functions.test/statefun", Protocol: Protocol2, States: declared})
		if err != nil {
			t.Fatal(err)
		}
		c.hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp := response(200, http.Header{"Content-Type": {"application/octet-stream"}}, body)
			resp.Request = r
			return resp, nil
		})
		state := map[string]driver.StoredValue{"seen": {TypeName: "a/b", Value: []byte("x")}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		res, err := c.Invoke(ctx, bob, state, []Call{{Argument: functions.StringType.Of("x")}})
		if err != nil {
			if !IsPermanent(err) {
				t.Fatalf("error %v is not permanent", err)
			}
			return
		}
		for _, s := range res.State {
			if _, ok := slices.BinarySearchFunc(res.Specs, s.Name, cmpSpecName); !ok {
				t.Fatalf("state change %+v of an undeclared state", s)
			}
			if !s.Deleted && checkTypeName(functions.NewMessage(s.Value.TypeName, nil)) != nil {
				t.Fatalf("state change %+v without a valid type name", s)
			}
		}
		for _, m := range res.Messages {
			if m.To.Validate() != nil || checkTypeName(m.Message) != nil {
				t.Fatalf("invalid message %+v", m)
			}
		}
		for _, d := range res.Delayed {
			if d.Cancel || d.Delay < 0 || d.To.Validate() != nil || checkTypeName(d.Message) != nil {
				t.Fatalf("invalid delayed message %+v", d)
			}
		}
	})
}

// FuzzState2RoundTrip: the state bytes a Protocol2 function writes are
// stored so that the next request carries them unchanged.
func FuzzState2RoundTrip(f *testing.F) {
	for _, s := range []string{"", "\x0a\x03a/b\x12\x01x", "\x0a\x03a/b", "\x12\x01x\x0a\x03a/b", "\x0a\x01a", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := storedFromState2(b)
		if got := stateBytes2(v); !bytes.Equal(got, b) {
			t.Fatalf("bytes %x stored as %+v come back as %x", b, v, got)
		}
		if v.TypeName != RawState2Type && checkTypeName(functions.NewMessage(v.TypeName, nil)) != nil {
			t.Fatalf("bytes %x stored under the invalid type name %q", b, v.TypeName)
		}
	})
}
