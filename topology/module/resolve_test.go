package module_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology/module"
)

const bindings = `kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/*
  urlPathTemplate: http://shop-fns:8000/{function.name}
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/checkout
  urlPathTemplate: https://checkout:8443/statefun
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: shop.admin/*
  urlPathTemplate: http://admin/{function.name}/{function.name}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: shop/orders
  topics:
    - topic: orders
      valueType: shop/Order
      targets: [shop/cart, local/audit, shop/checkout]
    - topic: refunds
      valueType: shop/Refund
      targets: [local/audit, local/refunds]
`

func TestEndpointForPrefersAnExactBinding(t *testing.T) {
	t.Parallel()
	m, err := module.Parse("module.yaml", []byte(bindings))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fn      functions.TypeName
		ok      bool
		binding string
		url     string
	}{
		{"shop/cart", true, "shop/*", "http://shop-fns:8000/cart"},
		{"shop/checkout", true, "shop/checkout", "https://checkout:8443/statefun"},
		{"shop.admin/users", true, "shop.admin/*", "http://admin/users/users"},
		{"shop.other/x", false, "", ""},
		{"shopx/cart", false, "", ""},
		{"local/audit", false, "", ""},
	}
	for _, tc := range tests {
		e, ok := m.EndpointFor(tc.fn)
		if ok != tc.ok {
			t.Errorf("EndpointFor(%s): got ok %v, want %v", tc.fn, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if e.Functions != tc.binding {
			t.Errorf("EndpointFor(%s): got binding %s, want %s", tc.fn, e.Functions, tc.binding)
		}
		if got := e.URLFor(tc.fn); got != tc.url {
			t.Errorf("URLFor(%s): got %q, want %q", tc.fn, got, tc.url)
		}
	}
}

func TestUnboundTargetsAndFunctionTypes(t *testing.T) {
	t.Parallel()
	m, err := module.Parse("module.yaml", []byte(bindings))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]functions.TypeName{"local/audit", "local/refunds"}, m.UnboundTargets()); diff != "" {
		t.Errorf("UnboundTargets mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]functions.TypeName{"shop/cart", "shop/checkout"}, m.FunctionTypes()); diff != "" {
		t.Errorf("FunctionTypes mismatch (-want +got):\n%s", diff)
	}
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, socket, path string
		ok                bool
	}{
		{"http+unix:///run/fns.sock/statefun/greeter", "/run/fns.sock", "/statefun/greeter", true},
		{"https+unix:///uds.sock", "/uds.sock", "/", true},
		{"http+unix:///no/socket/here", "", "", false},
		{"http://host/fns.sock/x", "", "", false},
	}
	for _, tc := range tests {
		socket, path, ok := module.UnixSocket(tc.url)
		if socket != tc.socket || path != tc.path || ok != tc.ok {
			t.Errorf("UnixSocket(%q) = %q, %q, %v; want %q, %q, %v", tc.url, socket, path, ok, tc.socket, tc.path, tc.ok)
		}
	}
}
