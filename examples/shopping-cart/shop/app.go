package shop

import (
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// Topology returns the application's topology. It leaves the partition
// count unset, so the --partitions flag decides it.
func Topology() topology.Topology {
	return topology.Topology{
		App:       App,
		Functions: []functions.TypeName{CartFunction, InventoryFunction, CheckoutFunction},
		Ingresses: []topology.Ingress{
			{Topic: AddToCartTopic, ValueType: AddToCartType.Name(), Router: topology.JSONFieldRouter("userId", CartFunction)},
			{Topic: ClearCartTopic, ValueType: ClearCartType.Name(), Router: topology.JSONFieldRouter("userId", CartFunction)},
			{Topic: CheckoutTopic, ValueType: CheckoutType.Name(), Router: topology.JSONFieldRouter("userId", CartFunction)},
			{Topic: RestockTopic, ValueType: RestockItemType.Name(), Router: topology.JSONFieldRouter("itemId", InventoryFunction)},
		},
		Egresses: []topology.Egress{{ID: Receipts.ID(), Topics: []topology.Topic{ReceiptsTopic}}},
	}
}

// Registry returns a new registry with the three function types.
func Registry() *functions.Registry {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: CartFunction, Function: cart(), State: []functions.StateSpec{Basket, Waiting}})
	reg.MustRegister(functions.Spec{Type: InventoryFunction, Function: inventory(), State: []functions.StateSpec{Stock}})
	reg.MustRegister(CheckoutSpec())
	return reg
}

// CheckoutSpec returns the spec of the checkout function type, on its own
// for applications that run it next to a cart and an inventory written in
// other languages (examples/shopping-cart-polyglot): it takes an
// [Order], writes its [Receipt] to the egress [Receipts] and answers the
// order's sender with the receipt.
func CheckoutSpec() functions.Spec {
	return functions.Spec{Type: CheckoutFunction, Function: checkoutFunction(), State: []functions.StateSpec{Orders},
		Egresses: []functions.TypeName{Receipts.ID()}}
}

// Build returns the application: [Topology] and [Registry].
func Build() (topology.Topology, *functions.Registry) {
	return Topology(), Registry()
}
