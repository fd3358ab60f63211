package remote_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"github.com/stateloop/stateloop/processor/remote/pbv2"
)

// fn2 is a fake StateFun 2.x function service: it records each request,
// decoded as 2.x, and answers with what answer returns (nil: an empty
// body, as the Python SDK 2.x sends for a call without effects).
type fn2 struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*pbv2.ToFunction
}

func newFn2(t *testing.T, answer func(*pbv2.ToFunction) proto.Message) *fn2 {
	t.Helper()
	f := &fn2{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &pbv2.ToFunction{}
		if err := proto.Unmarshal(body, req); err != nil {
			t.Errorf("request does not decode as StateFun 2.x: %v", err)
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		var out []byte
		if m := answer(req); m != nil {
			out, _ = proto.Marshal(m)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(out)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fn2) last() *pbv2.ToFunction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func result2(r *pbv2.FromFunction_InvocationResponse) *pbv2.FromFunction {
	return &pbv2.FromFunction{Response: &pbv2.FromFunction_InvocationResult{InvocationResult: r}}
}

func anyOf(url, value string) *anypb.Any { return &anypb.Any{TypeUrl: url, Value: []byte(value)} }

func anyBytes(url, value string) []byte {
	b, err := proto.Marshal(anyOf(url, value))
	if err != nil {
		panic(err)
	}
	return b
}

var declared2 = []driver.StateInfo{
	{Name: "seen_count"},
	{Name: "last", Expiration: functions.Expiration{Mode: functions.ExpireAfterCall, After: time.Minute}},
	{Name: "absent"},
}

func client2(t *testing.T, url string) *remote.Client {
	return newClient(t, remote.Config{URL: url, Protocol: remote.Protocol2, States: declared2, CallTimeout: 10 * time.Second})
}

// TestProtocol2Request: a StateFun 2.x request carries every declared
// state on every call (a stored value as a serialized Any whose type URL
// is its type name, an absent one unset: no missing-state round trip),
// the messages as Anys whose type URL is their type name, and the caller.
func TestProtocol2Request(t *testing.T) {
	t.Parallel()
	f := newFn2(t, func(*pbv2.ToFunction) proto.Message { return nil })
	c := client2(t, f.URL+"/statefun")
	state := map[string]driver.StoredValue{
		"seen_count": {TypeName: "type.googleapis.com/example.SeenCount", Value: []byte{0x08, 0x02}},
		"last":       {TypeName: remote.RawState2Type, Value: []byte("raw bytes")},
		"undeclared": {TypeName: "a/b", Value: []byte("x")},
	}
	caller := addr("example/relay", "Alice")
	batch := []remote.Call{
		{Argument: functions.NewMessage("com.googleapis/example.GreetRequest", []byte{0x0a, 0x03, 'B', 'o', 'b'})},
		{Caller: &caller, Argument: functions.StringType.Of("hi")},
	}
	res, err := c.Invoke(ctxTimeout(t, 20*time.Second), addr("example/greeter", "Bob"), state, batch)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	want := &pbv2.ToFunction{Request: &pbv2.ToFunction_Invocation_{Invocation: &pbv2.ToFunction_InvocationBatchRequest{
		Target: &pbv2.Address{Namespace: "example", Type: "greeter", Id: "Bob"},
		State: []*pbv2.ToFunction_PersistedValue{
			{StateName: "absent"},
			{StateName: "last", StateValue: []byte("raw bytes")},
			{StateName: "seen_count", StateValue: anyBytes("type.googleapis.com/example.SeenCount", "\x08\x02")},
		},
		Invocations: []*pbv2.ToFunction_Invocation{
			{Argument: anyOf("com.googleapis/example.GreetRequest", "\x0a\x03Bob")},
			{Caller: &pbv2.Address{Namespace: "example", Type: "relay", Id: "Alice"}, Argument: anyOf("io.statefun.types/string", "\x0a\x02hi")},
		},
	}}}
	if diff := cmp.Diff(want, f.last(), protocmp.Transform()); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	// An empty answer is a call without effects, as in StateFun 2.x.
	if len(res.State)+len(res.Messages)+len(res.Delayed)+len(res.Egress) != 0 {
		t.Errorf("effects of an empty answer: %+v", res)
	}
	if diff := cmp.Diff([]driver.StateInfo{declared2[2], declared2[1], declared2[0]}, res.Specs); diff != "" {
		t.Errorf("Specs (-want +got):\n%s", diff)
	}
}

// TestProtocol2Result: the effects of a StateFun 2.x answer. Messages,
// delayed messages and egress messages are the Anys' type URLs and values;
// a state written as an Any is stored as its type URL and value, other
// bytes as they are.
func TestProtocol2Result(t *testing.T) {
	t.Parallel()
	to := &pbv2.Address{Namespace: "example", Type: "printer", Id: "Bob"}
	kafka := anyOf("type.googleapis.com/"+remote.KafkaRecordName2, "\x0a\x03Bob\x12\x02hi\x1a\x09greetings")
	f := newFn2(t, func(*pbv2.ToFunction) proto.Message {
		return result2(&pbv2.FromFunction_InvocationResponse{
			StateMutations: []*pbv2.FromFunction_PersistedValueMutation{
				{MutationType: pbv2.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen_count", StateValue: anyBytes("type.googleapis.com/example.SeenCount", "\x08\x03")},
				{MutationType: pbv2.FromFunction_PersistedValueMutation_MODIFY, StateName: "last", StateValue: []byte{0xff, 0x01}},
				{MutationType: pbv2.FromFunction_PersistedValueMutation_DELETE, StateName: "absent"},
			},
			OutgoingMessages:   []*pbv2.FromFunction_Invocation{{Target: to, Argument: anyOf("type.googleapis.com/example.GreetResponse", "\x0a\x02hi")}},
			DelayedInvocations: []*pbv2.FromFunction_DelayedInvocation{{DelayInMs: 1500, Target: to, Argument: anyOf("type.googleapis.com/example.Tick", "")}},
			OutgoingEgresses:   []*pbv2.FromFunction_EgressMessage{{EgressNamespace: "example", EgressType: "greets", Argument: kafka}},
		})
	})
	res, err := client2(t, f.URL).Invoke(ctxTimeout(t, 20*time.Second), addr("example/greeter", "Bob"), nil, []remote.Call{call(functions.StringType.Of("x"))})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	printer := addr("example/printer", "Bob")
	want := &remote.Result{
		State: []driver.StateChange{
			{Name: "absent", Deleted: true},
			{Name: "last", Value: driver.StoredValue{TypeName: remote.RawState2Type, Value: []byte{0xff, 0x01}}},
			{Name: "seen_count", Value: driver.StoredValue{TypeName: "type.googleapis.com/example.SeenCount", Value: []byte{0x08, 0x03}}},
		},
		Messages: []functions.OutgoingMessage{{To: printer, Message: functions.NewMessage("type.googleapis.com/example.GreetResponse", []byte("\x0a\x02hi"))}},
		Delayed:  []driver.DelayedMessage{{Delay: 1500 * time.Millisecond, To: printer, Message: functions.NewMessage("type.googleapis.com/example.Tick", nil)}},
		Egress:   []functions.EgressMessage{{Egress: "example/greets", Message: functions.NewMessage(functions.TypeName(kafka.TypeUrl), kafka.Value)}},
		Specs:    []driver.StateInfo{declared2[2], declared2[1], declared2[0]},
	}
	if diff := cmp.Diff(want, res, cmp.AllowUnexported(functions.Message{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	rec, ok, err := remote.KafkaRecord(res.Egress[0].Message)
	if !ok || err != nil || !cmp.Equal(rec, functions.KafkaRecord{Topic: "greetings", Key: "Bob", Value: []byte("hi")}) {
		t.Errorf("KafkaRecord of the StateFun 2.x egress record = %+v, %v, %v; want the record for greetings", rec, ok, err)
	}
}

// TestProtocol2StateBytesComeBackUnchanged: whatever bytes a StateFun 2.x
// function writes as a state value, the next request carries exactly
// them, whether they were stored as an Any's type URL and value or as
// they are.
func TestProtocol2StateBytesComeBackUnchanged(t *testing.T) {
	t.Parallel()
	anyNoValue := anyBytes("type.googleapis.com/example.Empty", "")
	reversed := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte("v"))
	reversed = protowire.AppendString(protowire.AppendTag(reversed, 1, protowire.BytesType), "a/b")
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  driver.StoredValue
	}{
		{"an Any", anyBytes("type.googleapis.com/example.SeenCount", "\x08\x07"), driver.StoredValue{TypeName: "type.googleapis.com/example.SeenCount", Value: []byte{0x08, 0x07}}},
		{"an Any without value", anyNoValue, driver.StoredValue{TypeName: "type.googleapis.com/example.Empty", Value: []byte{}}},
		{"an Any with a type URL without '/'", anyBytes("example.SeenCount", "\x08\x07"), driver.StoredValue{TypeName: remote.RawState2Type, Value: anyBytes("example.SeenCount", "\x08\x07")}},
		{"an Any with its fields reversed", reversed, driver.StoredValue{TypeName: remote.RawState2Type, Value: reversed}},
		{"an empty Any", []byte{}, driver.StoredValue{TypeName: remote.RawState2Type, Value: []byte{}}},
		{"no protobuf at all", []byte{0xff, 0xff, 0xff}, driver.StoredValue{TypeName: remote.RawState2Type, Value: []byte{0xff, 0xff, 0xff}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFn2(t, func(*pbv2.ToFunction) proto.Message {
				return result2(&pbv2.FromFunction_InvocationResponse{StateMutations: []*pbv2.FromFunction_PersistedValueMutation{
					{MutationType: pbv2.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen_count", StateValue: tc.bytes}}})
			})
			c := client2(t, f.URL)
			bob := addr("example/greeter", "Bob")
			res, err := c.Invoke(ctxTimeout(t, 20*time.Second), bob, nil, []remote.Call{call(functions.StringType.Of("x"))})
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if diff := cmp.Diff(tc.want, res.State[0].Value, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("stored value (-want +got):\n%s", diff)
			}
			if _, err := c.Invoke(ctxTimeout(t, 20*time.Second), bob, applyState(nil, res.State), []remote.Call{call(functions.StringType.Of("x"))}); err != nil {
				t.Fatalf("second Invoke: %v", err)
			}
			got := f.last().GetInvocation().GetState()
			if len(got) != 3 || got[2].GetStateName() != "seen_count" || string(got[2].GetStateValue()) != string(tc.bytes) {
				t.Errorf("second request carries %v, want seen_count = %x", got, tc.bytes)
			}
		})
	}
}

// TestProtocolVersionMismatchFails: a response in the other version of the
// protocol than the module declares fails the invocation, permanently,
// naming the likely mismatch, instead of delivering empty messages and
// storing garbled state. The requests of one version parse as the other
// without an error, so the response is all there is to go by.
func TestProtocolVersionMismatchFails(t *testing.T) {
	t.Parallel()
	to2 := &pbv2.Address{Namespace: "example", Type: "printer", Id: "Bob"}
	greeterSDK := newSDKServer(t, greeterSpec()) // the official Go SDK 3.3
	for _, tc := range []struct {
		name     string
		protocol remote.Protocol
		url      string        // a server of its own, else one answering with answer
		answer   proto.Message // a response of the other version
		want     []string      // in the error
		states   []driver.StateInfo
	}{
		{name: "Go SDK 3.x asks for its state", protocol: remote.Protocol2, url: greeterSDK.URL + "/{function.name}",
			want: []string{"answered in the StateFun 3.x protocol", "IncompleteInvocationContext", "version \"2.0\"", "kind io.statefun.endpoints.v2/http"}},
		{name: "Go SDK 3.x with all its states sends a TypedValue", protocol: remote.Protocol2, url: greeterSDK.URL + "/{function.name}",
			states: []driver.StateInfo{{Name: "seen"}},
			want:   []string{"answered in the StateFun 3.x protocol", `invocation_result.outgoing_messages[0].argument is a TypedValue of type "io.statefun.types/string"`}},
		{name: "3.x state written", protocol: remote.Protocol2, states: []driver.StateInfo{{Name: "seen"}},
			answer: result(&pb.FromFunction_InvocationResponse{StateMutations: []*pb.FromFunction_PersistedValueMutation{{
				MutationType: pb.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen", StateValue: &pb.TypedValue{Typename: "io.statefun.types/int", HasValue: true, Value: []byte("\x0d\x01\x00\x00\x00")}}}}),
			want: []string{"answered in the StateFun 3.x protocol", `state "seen" was written as a TypedValue`}},
		{name: "3.x delayed message with a cancellation token", protocol: remote.Protocol2,
			answer: result(&pb.FromFunction_InvocationResponse{DelayedInvocations: []*pb.FromFunction_DelayedInvocation{{CancellationToken: "t", IsCancellationRequest: true}}}),
			want:   []string{"answered in the StateFun 3.x protocol", "invocation_result.delayed_invocations[0] has a field 10"}},
		{name: "2.x message", protocol: remote.Protocol3,
			answer: result2(&pbv2.FromFunction_InvocationResponse{OutgoingMessages: []*pbv2.FromFunction_Invocation{{Target: to2, Argument: anyOf("type.googleapis.com/example.GreetRequest", "\x0a\x03Bob")}}}),
			want:   []string{"answered in the StateFun 2.x protocol", `invocation_result.outgoing_messages[0].argument is a protobuf Any of type "type.googleapis.com/example.GreetRequest"`, `version: "2.0"`}},
		{name: "2.x state written", protocol: remote.Protocol3,
			answer: result2(&pbv2.FromFunction_InvocationResponse{StateMutations: []*pbv2.FromFunction_PersistedValueMutation{{
				MutationType: pbv2.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen_count", StateValue: anyBytes("type.googleapis.com/example.SeenCount", "\x08\x01")}}}),
			want: []string{"answered in the StateFun 2.x protocol", "invocation_result.state_mutations[0].state_value is a protobuf Any"}},
		{name: "2.x Kafka egress record", protocol: remote.Protocol3,
			answer: result2(&pbv2.FromFunction_InvocationResponse{OutgoingEgresses: []*pbv2.FromFunction_EgressMessage{{EgressNamespace: "example", EgressType: "greets",
				Argument: anyOf("type.googleapis.com/"+remote.KafkaRecordName2, "\x1a\x09greetings")}}}),
			want: []string{"answered in the StateFun 2.x protocol", "org.apache.flink.statefun.flink.io.KafkaProducerRecord"}},
		{name: "2.x delayed message", protocol: remote.Protocol3,
			answer: result2(&pbv2.FromFunction_InvocationResponse{DelayedInvocations: []*pbv2.FromFunction_DelayedInvocation{{DelayInMs: 5, Target: to2, Argument: anyOf("a/b", "x")}}}),
			want:   []string{"answered in the StateFun 2.x protocol", "delayed_invocations[0].argument"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := tc.url
			if url == "" {
				b, err := proto.Marshal(tc.answer)
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/octet-stream")
					_, _ = w.Write(b)
				}))
				t.Cleanup(srv.Close)
				url = srv.URL
			}
			c := newClient(t, remote.Config{URL: url, Protocol: tc.protocol, States: tc.states, CallTimeout: 10 * time.Second})
			res, err := c.Invoke(ctxTimeout(t, 20*time.Second), addr("example/greeter", "Bob"), nil, []remote.Call{call(functions.StringType.Of("Bob"))})
			if err == nil {
				t.Fatalf("got %+v, want an error", res)
			}
			if !remote.IsPermanent(err) || !errors.Is(err, remote.ErrProtocol) {
				t.Errorf("error %v is not a permanent protocol error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestEmptyResponseIsACallWithoutEffects: a StateFun 3.x function that
// changes nothing answers with an empty FromFunction (the Python SDK 3.3
// does), which StateFun takes as an empty result.
func TestEmptyResponseIsACallWithoutEffects(t *testing.T) {
	t.Parallel()
	// Regression: the client refused it as "neither an invocation result
	// nor an incomplete invocation context", and the message went to the
	// dead-letter topic.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
	}))
	t.Cleanup(srv.Close)
	res, err := invoke(t, newClient(t, remote.Config{URL: srv.URL + "/{function.name}"}))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if len(res.State)+len(res.Messages)+len(res.Delayed)+len(res.Egress) != 0 {
		t.Errorf("effects of an empty answer: %+v", res)
	}
}

// TestKafkaRecordTakesBothVersions: the Kafka egress record of StateFun
// 3.x and that of StateFun 2.x (same fields, another name) decode alike;
// other types are not records.
func TestKafkaRecordTakesBothVersions(t *testing.T) {
	t.Parallel()
	want := functions.KafkaRecord{Topic: "greetings", Key: "Bob", Value: []byte("hi")}
	v3 := functions.KafkaMessage(want.Topic, want.Key, want.Value)
	for _, tc := range []struct {
		name   string
		msg    functions.Message
		ok     bool
		errors bool
	}{
		{"3.x", v3, true, false},
		{"2.x, as the SDKs pack it", functions.NewMessage("type.googleapis.com/"+remote.KafkaRecordName2, v3.Bytes()), true, false},
		{"2.x with another type URL prefix", functions.NewMessage("com.googleapis/"+remote.KafkaRecordName2, v3.Bytes()), true, false},
		{"3.x name with another prefix", functions.NewMessage("com.googleapis/io.statefun.sdk.egress.KafkaProducerRecord", v3.Bytes()), false, false},
		{"a string", functions.StringType.Of("hi"), false, false},
		{"2.x, corrupt", functions.NewMessage("type.googleapis.com/"+remote.KafkaRecordName2, []byte{0x0a, 0x05}), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, ok, err := remote.KafkaRecord(tc.msg)
			if ok != tc.ok || (err != nil) != tc.errors {
				t.Fatalf("KafkaRecord = %+v, %v, %v; want ok %v, error %v", rec, ok, err, tc.ok, tc.errors)
			}
			if ok && !tc.errors && !cmp.Equal(rec, want) {
				t.Errorf("record %+v, want %+v", rec, want)
			}
		})
	}
}

// TestProtocolConfig: states belong to StateFun 2.x endpoints, once each.
func TestProtocolConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  remote.Config
		want string
	}{
		{"states for 3.x", remote.Config{URL: "http://x/", States: []driver.StateInfo{{Name: "a"}}}, "declared for StateFun 2.x endpoints only"},
		{"a state twice", remote.Config{URL: "http://x/", Protocol: remote.Protocol2, States: []driver.StateInfo{{Name: "a"}, {Name: "a"}}}, `state "a" is declared twice`},
		{"a state without name", remote.Config{URL: "http://x/", Protocol: remote.Protocol2, States: []driver.StateInfo{{}}}, "has no name"},
		{"unknown protocol", remote.Config{URL: "http://x/", Protocol: 7}, "unknown protocol 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remote.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestServerErrorsOfANewTypeHintAtStateFun2: a StateFun 2.x function
// behind a StateFun 3.x endpoint gets no state and fails reading it (HTTP
// 500 from the Python SDK 2.x): when a function type has only ever
// answered so, the call timeout's error names that likely cause; once a
// call of the type succeeded, it does not.
func TestServerErrorsOfANewTypeHintAtStateFun2(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			http.Error(w, "KeyError: 'unknown state name seen_count'", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, remote.Config{URL: srv.URL, CallTimeout: 300 * time.Millisecond})
	const hint = "if it runs a StateFun 2.x SDK"
	_, err := invoke(t, c)
	if !errors.Is(err, remote.ErrCallTimeout) || !strings.Contains(err.Error(), hint) || !strings.Contains(err.Error(), `version: "2.0"`) {
		t.Errorf("error of a type that never succeeded: %v; want ErrCallTimeout with %q", err, hint)
	}
	fail.Store(false)
	if _, err := invoke(t, c); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	fail.Store(true)
	_, err = invoke(t, c)
	if !errors.Is(err, remote.ErrCallTimeout) || strings.Contains(err.Error(), hint) {
		t.Errorf("error of a type that succeeded before: %v; want ErrCallTimeout without %q", err, hint)
	}
}
