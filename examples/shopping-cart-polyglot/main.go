// Command shopping-cart-polyglot runs the shopping cart of
// examples/shopping-cart with its functions in three languages, in one
// application: the cart in Python (cart/cart.py), the inventory in
// JavaScript (inventory/inventory.js), both written with the official
// StateFun SDKs and called over HTTP, and the checkout in Go, inside this
// program. It takes the flags of `stateloop run`; run it with the module
// file that says where the Python and JavaScript services listen:
//
//	go run ./examples/shopping-cart-polyglot -f examples/shopping-cart-polyglot/module.yaml
//
// See README.md.
package main

import (
	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/examples/shopping-cart/shop"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// App is the application's name: its consumer group and the prefix of its
// internal topics.
const App = "shopping-cart-polyglot"

func main() {
	app.Main(Build)
}

// Build returns the application: the topology of examples/shopping-cart
// under the name App (the three function types, the four ingress topics
// of JSON commands routed by a field, the egress of receipts), and a
// registry with the Go checkout alone. shop/cart and shop/inventory are
// in the topology but not registered: module.yaml binds them to their
// HTTP endpoints (-f), and without it the application fails at start-up
// saying that nothing serves them.
func Build() (topology.Topology, *functions.Registry) {
	topo := shop.Topology()
	topo.App = App
	reg := functions.NewRegistry()
	reg.MustRegister(shop.CheckoutSpec())
	return topo, reg
}
