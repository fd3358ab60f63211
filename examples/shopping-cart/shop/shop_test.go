package shop_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/examples/shopping-cart/shop"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
	"github.com/stateloop/stateloop/topology"
)

// The tests run the whole application in the topology driver: records on
// the ingress topics, messages between the cart, the inventory and the
// checkout, receipts on the topic receipts, the abandon timer on the fake
// clock.

func newShop(t *testing.T) *functionstest.TopologyDriver {
	t.Helper()
	d, err := functionstest.NewTopologyDriver(shop.Build())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func cartOf(user string) functions.Address {
	return functions.Address{Type: shop.CartFunction, ID: user}
}

func inventoryOf(item string) functions.Address {
	return functions.Address{Type: shop.InventoryFunction, ID: item}
}

func restock(t *testing.T, d *functionstest.TopologyDriver, item string, n int64) {
	t.Helper()
	if err := functionstest.PipeValue(d, shop.RestockTopic, "", shop.RestockItemType.Codec(), shop.RestockItem{ItemID: item, Quantity: n}); err != nil {
		t.Fatal(err)
	}
}

func add(t *testing.T, d *functionstest.TopologyDriver, user, item string, n int64) {
	t.Helper()
	if err := functionstest.PipeValue(d, shop.AddToCartTopic, "", shop.AddToCartType.Codec(), shop.AddToCart{UserID: user, ItemID: item, Quantity: n}); err != nil {
		t.Fatal(err)
	}
}

func checkout(t *testing.T, d *functionstest.TopologyDriver, user string) {
	t.Helper()
	if err := functionstest.PipeValue(d, shop.CheckoutTopic, "", shop.CheckoutType.Codec(), shop.Checkout{UserID: user}); err != nil {
		t.Fatal(err)
	}
}

func basket(d *functionstest.TopologyDriver, user string) map[string]int64 {
	b, _ := functionstest.StateOf(d, cartOf(user), shop.Basket)
	return b
}

func stock(d *functionstest.TopologyDriver, item string) int64 {
	n, _ := functionstest.StateOf(d, inventoryOf(item), shop.Stock)
	return n
}

func TestAddToCartReservesWhatIsInStock(t *testing.T) {
	t.Parallel()
	d := newShop(t)
	restock(t, d, "socks", 5)
	restock(t, d, "hat", 1)
	steps := []struct {
		name       string
		user, item string
		n          int64
		wantBasket map[string]int64
		wantStock  int64
	}{
		{"in stock", "alice", "socks", 2, map[string]int64{"socks": 2}, 3},
		{"more of the same", "alice", "socks", 3, map[string]int64{"socks": 5}, 0},
		{"out of stock: nothing changes", "alice", "socks", 1, map[string]int64{"socks": 5}, 0},
		{"another item", "alice", "hat", 1, map[string]int64{"socks": 5, "hat": 1}, 0},
		{"an item never stocked", "bob", "gloves", 1, nil, 0},
	}
	for _, s := range steps {
		add(t, d, s.user, s.item, s.n)
		if diff := cmp.Diff(s.wantBasket, basket(d, s.user)); diff != "" {
			t.Errorf("%s: basket of %s (-want +got):\n%s", s.name, s.user, diff)
		}
		if got := stock(d, s.item); got != s.wantStock {
			t.Errorf("%s: stock of %s %d, want %d", s.name, s.item, got, s.wantStock)
		}
		if w, ok := functionstest.StateOf(d, cartOf(s.user), shop.Waiting); ok {
			t.Errorf("%s: waiting commands %+v, want no state left", s.name, w)
		}
	}
}

func TestCheckoutWritesAReceipt(t *testing.T) {
	t.Parallel()
	d := newShop(t)
	restock(t, d, "socks", 10)
	restock(t, d, "hat", 10)
	add(t, d, "alice", "socks", 2)
	add(t, d, "alice", "hat", 1)
	add(t, d, "bob", "socks", 1)
	checkout(t, d, "alice")
	add(t, d, "alice", "hat", 4)
	checkout(t, d, "alice")
	checkout(t, d, "carol") // an empty cart writes no receipt

	recs := d.ReadRecords(shop.ReceiptsTopic)
	got, err := functionstest.Values(recs, shop.Receipts.Codec())
	if err != nil {
		t.Fatal(err)
	}
	want := []shop.Receipt{
		{OrderID: "alice-1", UserID: "alice", Items: []shop.Line{{ItemID: "hat", Quantity: 1}, {ItemID: "socks", Quantity: 2}}, TotalItems: 3},
		{OrderID: "alice-2", UserID: "alice", Items: []shop.Line{{ItemID: "hat", Quantity: 4}}, TotalItems: 4},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("receipts (-want +got):\n%s", diff)
	}
	for _, r := range recs {
		if string(r.Key) != "alice" || r.Egress != shop.Receipts.ID() || r.From != (functions.Address{Type: shop.CheckoutFunction, ID: "alice"}) {
			t.Errorf("record %+v: want key alice, written by shop/checkout/alice to %s", r, shop.Receipts.ID())
		}
	}
	if b := basket(d, "alice"); len(b) != 0 {
		t.Errorf("alice's basket after checkout: %v, want empty", b)
	}
	if diff := cmp.Diff(map[string]int64{"socks": 1}, basket(d, "bob")); diff != "" {
		t.Errorf("bob's basket (-want +got):\n%s", diff)
	}
	if s, h := stock(d, "socks"), stock(d, "hat"); s != 7 || h != 5 {
		t.Errorf("stock: socks %d, hat %d; want 7 and 5 (bought and reserved stay taken)", s, h)
	}
	// only bob's cart still waits to be abandoned
	if p := d.Pending(); len(p) != 1 || p[0].To != cartOf("bob") {
		t.Errorf("pending: %+v, want bob's abandon timer only", p)
	}
	if dl := d.DeadLetters(); len(dl) != 0 {
		t.Errorf("dead letters: %v", dl)
	}
}

func TestClearCartReleasesTheStock(t *testing.T) {
	t.Parallel()
	d := newShop(t)
	restock(t, d, "socks", 3)
	add(t, d, "alice", "socks", 2)
	if err := functionstest.PipeValue(d, shop.ClearCartTopic, "", shop.ClearCartType.Codec(), shop.ClearCart{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	if b := basket(d, "alice"); len(b) != 0 {
		t.Errorf("basket: %v, want empty", b)
	}
	if n := stock(d, "socks"); n != 3 {
		t.Errorf("stock %d, want 3", n)
	}
	if p := d.Pending(); len(p) != 0 {
		t.Errorf("pending: %+v, want the abandon timer cancelled", p)
	}
}

// TestAbandonedCartReleasesItsStock: a cart left alone for AbandonAfter
// gives its items back; every change starts the wait again.
func TestAbandonedCartReleasesItsStock(t *testing.T) {
	t.Parallel()
	d := newShop(t)
	restock(t, d, "socks", 5)
	add(t, d, "alice", "socks", 2)
	if err := d.Advance(20 * time.Minute); err != nil {
		t.Fatal(err)
	}
	add(t, d, "alice", "socks", 1) // postpones it
	if err := d.Advance(shop.AbandonAfter - time.Minute); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"socks": 3}, basket(d, "alice")); diff != "" {
		t.Fatalf("basket a minute before the cart is abandoned (-want +got):\n%s", diff)
	}
	if err := d.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	if b := basket(d, "alice"); len(b) != 0 {
		t.Errorf("basket of the abandoned cart: %v, want empty", b)
	}
	if n := stock(d, "socks"); n != 5 {
		t.Errorf("stock %d, want all 5 back", n)
	}
	if dl := d.DeadLetters(); len(dl) != 0 {
		t.Errorf("dead letters: %v (the cart must not answer its own timer)", dl)
	}
}

// TestCartAnswersTheHTTPCaller: a request with ?wait= gets the cart once
// the inventory has answered, and the receipt once the checkout has; a
// restock gets the stock level.
func TestCartAnswersTheHTTPCaller(t *testing.T) {
	t.Parallel()
	d := newShop(t)
	reply, err := d.Request(inventoryOf("socks"), shop.RestockItemType.Of(shop.RestockItem{Quantity: 4}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := shop.StockLevelType.As(reply); err != nil || got != (shop.StockLevel{ItemID: "socks", InStock: 4}) {
		t.Errorf("restock: got %+v, %v", got, err)
	}
	steps := []struct {
		name string
		msg  functions.Message
		want any
	}{
		{"add", shop.AddToCartType.Of(shop.AddToCart{ItemID: "socks", Quantity: 3}),
			shop.CartView{UserID: "alice", Items: []shop.Line{{ItemID: "socks", Quantity: 3}}, Event: "added 3 socks"}},
		{"add more than there is", shop.AddToCartType.Of(shop.AddToCart{ItemID: "socks", Quantity: 2}),
			shop.CartView{UserID: "alice", Items: []shop.Line{{ItemID: "socks", Quantity: 3}}, Event: "socks: 2 asked, 1 in stock"}},
		{"checkout", shop.CheckoutType.Of(shop.Checkout{}),
			shop.Receipt{OrderID: "alice-1", UserID: "alice", Items: []shop.Line{{ItemID: "socks", Quantity: 3}}, TotalItems: 3}},
		{"checkout of an empty cart", shop.CheckoutType.Of(shop.Checkout{}),
			shop.CartView{UserID: "alice", Items: []shop.Line{}, Event: "the cart is empty: nothing to check out"}},
		{"clear", shop.ClearCartType.Of(shop.ClearCart{}), shop.CartView{UserID: "alice", Items: []shop.Line{}, Event: "cleared"}},
	}
	for _, s := range steps {
		reply, err := d.Request(cartOf("alice"), s.msg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var got any
		switch reply.TypeName() {
		case shop.CartViewType.Name():
			got, err = shop.CartViewType.As(reply)
		case shop.ReceiptType.Name():
			got, err = shop.ReceiptType.As(reply)
		default:
			t.Fatalf("%s: reply of type %s", s.name, reply.TypeName())
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s: reply (-want +got):\n%s", s.name, diff)
		}
	}
}

// TestBadCommandsAreDeadLetters: what cannot be processed goes to the
// dead-letter topic with the reason, and the shop goes on.
func TestBadCommandsAreDeadLetters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		topic topology.Topic
		value string
		want  string
	}{
		{"not JSON", shop.AddToCartTopic, `socks please`, "the record value is not a JSON object"},
		{"no user", shop.AddToCartTopic, `{"itemId":"socks","quantity":1}`, `no field "userId"`},
		{"no quantity", shop.AddToCartTopic, `{"userId":"alice","itemId":"socks"}`, "want an itemId and a quantity of at least 1"},
		{"no item", shop.AddToCartTopic, `{"userId":"alice","quantity":1}`, "want an itemId and a quantity of at least 1"},
		{"negative restock", shop.RestockTopic, `{"itemId":"socks","quantity":-3}`, "quantity -3: want at least 1"},
		{"checkout without user", shop.CheckoutTopic, `{}`, `no field "userId"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newShop(t)
			restock(t, d, "socks", 2)
			err := d.Pipe(tc.topic, "", []byte(tc.value))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a dead letter containing %q", err, tc.want)
			}
			if n := len(d.DeadLetters()); n != 1 {
				t.Errorf("%d dead letters, want 1", n)
			}
			add(t, d, "alice", "socks", 1)
			if n := stock(d, "socks"); n != 1 {
				t.Errorf("stock after the next add: %d, want 1", n)
			}
		})
	}
}
