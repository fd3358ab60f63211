package topology_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

var errRouter = errors.New("no such order")

func routeTopology() topology.Topology {
	return topology.Topology{
		App:       "shop",
		Functions: []functions.TypeName{"shop/cart", "shop/audit"},
		Ingresses: []topology.Ingress{
			{Topic: "keyed", ValueType: "shop/add", Targets: []functions.TypeName{"shop/cart", "shop/audit"}},
			{Topic: "routed", ValueType: "shop/order", Router: func(rec topology.Record) ([]functions.OutgoingMessage, error) {
				switch string(rec.Value) {
				case "fail":
					return nil, errRouter
				case "panic":
					panic("router bug")
				case "bad address":
					return []functions.OutgoingMessage{{To: functions.Address{Type: "shop/cart"}, Message: functions.NewMessage(rec.ValueType, rec.Value)}}, nil
				}
				return []functions.OutgoingMessage{{To: functions.Address{Type: "shop/cart", ID: string(rec.Value)}, Message: functions.NewMessage(rec.ValueType, rec.Value)}}, nil
			}},
		},
		Egresses: []topology.Egress{
			{ID: "shop/receipts", Topics: []topology.Topic{"receipts", "receipts-eu"}},
			{ID: "shop/any", AnyTopic: true},
			{ID: "shop/any-default", Topics: []topology.Topic{"fallback"}, AnyTopic: true},
		},
	}
}

func msgTo(fn functions.TypeName, id, typ, value string) functions.OutgoingMessage {
	return functions.OutgoingMessage{To: functions.Address{Type: fn, ID: id}, Message: functions.NewMessage(functions.TypeName(typ), []byte(value))}
}

// TestRoute pins down how an ingress record becomes messages, for the
// runtime and the test driver alike: by key to every target, or by the
// router (which sees the ingress's value type), and which records are
// refused, with the reason the dead-letter topic shows.
func TestRoute(t *testing.T) {
	t.Parallel()
	topo := routeTopology()
	tests := []struct {
		name    string
		rec     topology.Record
		want    []functions.OutgoingMessage
		wantErr string
	}{
		{name: "by key to every target", rec: topology.Record{Topic: "keyed", Key: []byte("alice"), Value: []byte("socks")},
			want: []functions.OutgoingMessage{msgTo("shop/cart", "alice", "shop/add", "socks"), msgTo("shop/audit", "alice", "shop/add", "socks")}},
		{name: "by router, with the value type", rec: topology.Record{Topic: "routed", Value: []byte("o-1")},
			want: []functions.OutgoingMessage{msgTo("shop/cart", "o-1", "shop/order", "o-1")}},
		{name: "no key", rec: topology.Record{Topic: "keyed", Value: []byte("socks")}, wantErr: "topology: ingress record has no key"},
		{name: "empty key", rec: topology.Record{Topic: "keyed", Key: []byte{}, Value: []byte("socks")},
			wantErr: "topology: ingress record routed to an invalid address: the record key, the function id, is empty"},
		{name: "router error", rec: topology.Record{Topic: "routed", Value: []byte("fail")}, wantErr: "topology: ingress router failed: no such order"},
		{name: "router panic", rec: topology.Record{Topic: "routed", Value: []byte("panic")}, wantErr: "topology: ingress router failed: panic: router bug"},
		{name: "router's invalid address", rec: topology.Record{Topic: "routed", Value: []byte("bad address")},
			wantErr: "topology: ingress record routed to an invalid address: functions: address shop/cart/ has an empty id"},
		{name: "not an ingress", rec: topology.Record{Topic: "receipts", Key: []byte("a")}, wantErr: `topology: topic "receipts" is not an ingress of application shop`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := topo.Route(tc.rec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				if got != nil {
					t.Errorf("got messages %v with the error, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(sameMessage)); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := topo.Route(topology.Record{Topic: "routed", Value: []byte("fail")}); !errors.Is(err, errRouter) {
		t.Errorf("router error %v does not wrap the router's error", err)
	}
}

func sameMessage(a, b functions.Message) bool {
	return a.TypeName() == b.TypeName() && string(a.Bytes()) == string(b.Bytes())
}

// TestEgressRecord pins down which Kafka record an egress message becomes,
// and which egress messages fail their invocation.
func TestEgressRecord(t *testing.T) {
	t.Parallel()
	topo := routeTopology()
	kafka := func(egress, topic, key, value string) functions.EgressMessage {
		return functions.EgressMessage{Egress: functions.TypeName(egress), Message: functions.KafkaMessage(topic, key, []byte(value))}
	}
	tests := []struct {
		name    string
		msg     functions.EgressMessage
		want    topology.EgressRecord
		wantErr string
	}{
		{name: "named topic with key", msg: kafka("shop/receipts", "receipts-eu", "alice", "r1"),
			want: topology.EgressRecord{Topic: "receipts-eu", Key: []byte("alice"), Value: []byte("r1")}},
		{name: "no topic: the first", msg: kafka("shop/receipts", "", "alice", "r1"),
			want: topology.EgressRecord{Topic: "receipts", Key: []byte("alice"), Value: []byte("r1")}},
		{name: "no key, no value", msg: kafka("shop/receipts", "receipts", "", ""),
			want: topology.EgressRecord{Topic: "receipts", Value: []byte{}}},
		{name: "any topic", msg: kafka("shop/any", "elsewhere", "k", "v"),
			want: topology.EgressRecord{Topic: "elsewhere", Key: []byte("k"), Value: []byte("v")}},
		{name: "any topic, default", msg: kafka("shop/any-default", "", "k", "v"),
			want: topology.EgressRecord{Topic: "fallback", Key: []byte("k"), Value: []byte("v")}},
		{name: "unknown egress", msg: kafka("shop/nowhere", "receipts", "k", "v"), wantErr: "topology: unknown egress shop/nowhere"},
		{name: "topic not of the egress", msg: kafka("shop/receipts", "orders", "k", "v"), wantErr: `topology: egress shop/receipts does not write to topic "orders"`},
		{name: "any topic, none named", msg: kafka("shop/any", "", "k", "v"), wantErr: "writes to the topic each record names, and this record names none"},
		{name: "internal topic", msg: kafka("shop/any", "shop-loop", "k", "v"), wantErr: `topic "shop-loop" is the loop topic of application shop; egress records never go to internal topics`},
		{name: "not a Kafka record", msg: functions.EgressMessage{Egress: "shop/receipts", Message: functions.StringType.Of("r1")},
			wantErr: "topology: egress shop/receipts takes type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord messages (or StateFun 2.x's org.apache.flink.statefun.flink.io.KafkaProducerRecord), got io.statefun.types/string"},
		{name: "StateFun 2.x's record", msg: functions.EgressMessage{Egress: "shop/receipts",
			Message: functions.NewMessage("type.googleapis.com/"+functions.KafkaRecordName2, functions.KafkaMessage("receipts", "k", []byte("v")).Bytes())},
			want: topology.EgressRecord{Topic: "receipts", Key: []byte("k"), Value: []byte("v")}},
		{name: "record does not decode", msg: functions.EgressMessage{Egress: "shop/receipts", Message: functions.NewMessage(functions.KafkaRecordType.Name(), []byte{0x0a, 0x40})},
			wantErr: "topology: egress shop/receipts: functions: decode message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := topo.EgressRecord(tc.msg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateServed(t *testing.T) {
	t.Parallel()
	nop := functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil })
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "shop/cart", Function: nop})
	topo := topology.Topology{App: "shop", Functions: []functions.TypeName{"shop/cart", "shop/py", "shop/js"}}
	remote := func(fn functions.TypeName) bool { return fn == "shop/py" }
	err := topo.ValidateServed(reg, remote)
	if err == nil || !strings.Contains(err.Error(), "function type shop/js is in the topology but neither registered nor served by a remote endpoint") {
		t.Errorf("got %v, want shop/js reported", err)
	}
	if err != nil && (strings.Contains(err.Error(), "shop/py") || strings.Contains(err.Error(), "shop/cart")) {
		t.Errorf("got %v, want only shop/js reported", err)
	}
	if err := topo.ValidateServed(reg, nil); err == nil || !strings.Contains(err.Error(), "shop/py") || !strings.Contains(err.Error(), "shop/js") {
		t.Errorf("without remote functions: got %v, want shop/py and shop/js reported", err)
	}
}
