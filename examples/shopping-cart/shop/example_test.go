package shop_test

import (
	"fmt"

	"github.com/stateloop/stateloop/examples/shopping-cart/shop"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
	"github.com/stateloop/stateloop/topology"
)

// The shop in the topology driver: records on the ingress topics, as
// `stateloop send` writes them, and the receipt on the topic receipts.
func Example() {
	d, err := functionstest.NewTopologyDriver(shop.Build())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []struct {
		topic topology.Topic
		value string
	}{
		{"restock", `{"itemId":"socks","quantity":10}`},
		{"add-to-cart", `{"userId":"alice","itemId":"socks","quantity":2}`},
		{"add-to-cart", `{"userId":"alice","itemId":"hat","quantity":1}`}, // not in stock
		{"checkout", `{"userId":"alice"}`},
	} {
		if err := d.Pipe(r.topic, "", []byte(r.value)); err != nil {
			fmt.Println(err)
		}
	}
	for _, r := range d.Records(shop.ReceiptsTopic) {
		fmt.Printf("%s %s\n", r.Key, r.Value)
	}
	left, _ := functionstest.StateOf(d, functions.Address{Type: shop.InventoryFunction, ID: "socks"}, shop.Stock)
	fmt.Println("socks left:", left)
	// Output:
	// alice {"orderId":"alice-1","userId":"alice","items":[{"itemId":"socks","quantity":2}],"totalItems":2}
	// socks left: 8
}

// An HTTP request with ?wait= gets the cart's answer once the inventory
// has answered the cart; Request does the same in the driver.
func Example_request() {
	d, err := functionstest.NewTopologyDriver(shop.Build())
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := d.Pipe(shop.RestockTopic, "", []byte(`{"itemId":"socks","quantity":3}`)); err != nil {
		fmt.Println(err)
		return
	}
	alice := functions.Address{Type: shop.CartFunction, ID: "alice"}
	for _, n := range []int64{2, 2} {
		reply, err := d.Request(alice, shop.AddToCartType.Of(shop.AddToCart{ItemID: "socks", Quantity: n}))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %s\n", reply.TypeName(), reply.Bytes())
	}
	// Output:
	// shop/CartView {"userId":"alice","items":[{"itemId":"socks","quantity":2}],"event":"added 2 socks"}
	// shop/CartView {"userId":"alice","items":[{"itemId":"socks","quantity":2}],"event":"socks: 2 asked, 1 in stock"}
}
