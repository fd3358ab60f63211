package remote

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"google.golang.org/protobuf/proto"
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
