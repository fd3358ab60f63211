package topology_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

func TestJSONFieldRouter(t *testing.T) {
	t.Parallel()
	byUser := topology.JSONFieldRouter("userId", "shop/cart", "shop/audit")
	nested := topology.JSONFieldRouter("customer.id", "shop/cart")
	tests := []struct {
		name    string
		router  topology.Router
		value   string
		wantID  string
		wantErr string
	}{
		{name: "string", router: byUser, value: `{"userId":"alice","itemId":"socks"}`, wantID: "alice"},
		{name: "escaped string", router: byUser, value: `{"userId":"al\u00efce"}`, wantID: "alïce"},
		{name: "number as written", router: byUser, value: `{"userId": 1e3}`, wantID: "1e3"},
		{name: "negative number", router: byUser, value: `{"userId": -7}`, wantID: "-7"},
		{name: "nested", router: nested, value: `{"customer":{"id":"c-9","name":"Carol"}}`, wantID: "c-9"},
		{name: "not JSON", router: byUser, value: `alice`, wantErr: `route by JSON field "userId": the record value is not a JSON object`},
		{name: "JSON array", router: byUser, value: `["alice"]`, wantErr: "the record value is not a JSON object"},
		{name: "JSON null", router: byUser, value: `null`, wantErr: "the record value is not a JSON object"},
		{name: "missing field", router: byUser, value: `{"user":"alice"}`, wantErr: `no field "userId" in the record value`},
		{name: "null field", router: byUser, value: `{"userId":null}`, wantErr: "field value null: want a string or a number"},
		{name: "object field", router: byUser, value: `{"userId":{"id":1}}`, wantErr: "want a string or a number"},
		{name: "bool field", router: byUser, value: `{"userId":true}`, wantErr: "want a string or a number"},
		{name: "empty string", router: byUser, value: `{"userId":""}`, wantErr: "the field is an empty string"},
		{name: "nested: not an object on the way", router: nested, value: `{"customer":"c-9"}`, wantErr: `"customer" is not a JSON object`},
		{name: "nested: missing", router: nested, value: `{"customer":{"name":"Carol"}}`, wantErr: `no field "customer.id"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msgs, err := tc.router(topology.Record{Topic: "in", Value: []byte(tc.value), ValueType: "shop/AddToCart"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", msgs, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				t.Fatal("got no messages")
			}
			for _, m := range msgs {
				if m.To.ID != tc.wantID {
					t.Errorf("got id %q, want %q", m.To.ID, tc.wantID)
				}
				if m.Message.TypeName() != "shop/AddToCart" || string(m.Message.Bytes()) != tc.value {
					t.Errorf("got message %s %q, want the record value unchanged as shop/AddToCart", m.Message.TypeName(), m.Message.Bytes())
				}
			}
		})
	}
	msgs, _ := byUser(topology.Record{Value: []byte(`{"userId":"bob"}`)})
	if len(msgs) != 2 || msgs[0].To.Type != "shop/cart" || msgs[1].To.Type != "shop/audit" {
		t.Errorf("got %v, want one message to each target, in order", msgs)
	}
}

func TestJSONFieldRouterPanicsOnBadArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		field   string
		targets []functions.TypeName
	}{
		{"no field", "", []functions.TypeName{"shop/cart"}},
		{"empty part", "customer..id", []functions.TypeName{"shop/cart"}},
		{"no targets", "userId", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("JSONFieldRouter(%q, %v) did not panic", tc.field, tc.targets)
				}
			}()
			topology.JSONFieldRouter(tc.field, tc.targets...)
		})
	}
}

// An ingress of JSON records routed by a field of the value: each record
// of topic add-to-cart goes to the cart of its user.
func ExampleJSONFieldRouter() {
	topo := topology.Topology{
		App:       "shop",
		Functions: []functions.TypeName{"shop/cart"},
		Ingresses: []topology.Ingress{{
			Topic:     "add-to-cart",
			ValueType: "shop/AddToCart",
			Router:    topology.JSONFieldRouter("userId", "shop/cart"),
		}},
	}
	for _, value := range []string{`{"userId":"alice","itemId":"socks","quantity":2}`, `{"itemId":"socks"}`} {
		msgs, err := topo.Route(topology.Record{Topic: "add-to-cart", Value: []byte(value)})
		if err != nil {
			fmt.Println("dead letter:", err)
			continue
		}
		for _, m := range msgs {
			fmt.Printf("to %s: %s %s\n", m.To, m.Message.TypeName(), m.Message.Bytes())
		}
	}
	// Output:
	// to shop/cart/alice: shop/AddToCart {"userId":"alice","itemId":"socks","quantity":2}
	// dead letter: topology: ingress router failed: route by JSON field "userId": no field "userId" in the record value
}
