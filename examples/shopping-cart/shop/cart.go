package shop

import (
	"fmt"
	"maps"
	"slices"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
)

// The state of a cart.
var (
	// Basket holds the items reserved for the user: quantity by item id.
	Basket = functions.NewState("basket", functions.NewType("shop/Basket", codec.JSON[map[string]int64]()))
	// Waiting holds the commands waiting for an answer from another
	// function, oldest first.
	Waiting = functions.NewState("waiting", functions.NewType("shop/Waiting", codec.JSON[[]Pending]()))
)

// Pending is a command of a cart waiting for another function's answer:
// an item being reserved at its inventory, or an order at the checkout.
type Pending struct {
	// ItemID and Quantity of an item being reserved; ItemID is "" for an
	// order.
	ItemID   string `json:"itemId,omitempty"`
	Quantity int64  `json:"quantity,omitempty"`
	// ReplyTo is the caller of the command, answered when the answer
	// comes; nil for a command from Kafka.
	ReplyTo *functions.Address `json:"replyTo,omitempty"`
}

// abandonToken names the cart's delayed message to itself that clears it
// once it has been left alone for AbandonAfter.
const abandonToken = "abandon"

func cart() functions.Function {
	return functions.Router(
		functions.Handle(AddToCartType, addToCart),
		functions.Handle(ItemAvailabilityType, itemAvailability),
		functions.Handle(ClearCartType, clearCart),
		functions.Handle(CheckoutType, checkout),
		functions.Handle(ReceiptType, receipt),
	)
}

// caller returns the caller of the message, nil if it has none.
func caller(ctx functions.Context) *functions.Address {
	if c, ok := ctx.Caller(); ok {
		return &c
	}
	return nil
}

// addToCart asks the item's inventory to reserve the quantity; the cart
// answers its caller when the inventory has answered.
func addToCart(ctx functions.Context, add AddToCart) error {
	if add.ItemID == "" || add.Quantity < 1 {
		return functions.Permanent(fmt.Errorf("shop: add to cart %s: want an itemId and a quantity of at least 1, got %q and %d", ctx.Self().ID, add.ItemID, add.Quantity))
	}
	ctx.Send(functions.Address{Type: InventoryFunction, ID: add.ItemID}, RequestItemType.Of(RequestItem{Quantity: add.Quantity}))
	waiting, _ := Waiting.Get(ctx)
	Waiting.Set(ctx, append(waiting, Pending{ItemID: add.ItemID, Quantity: add.Quantity, ReplyTo: caller(ctx)}))
	ctx.SendAfterWithToken(AbandonAfter, abandonToken, ctx.Self(), ClearCartType.Of(ClearCart{}))
	return nil
}

// itemAvailability is an inventory's answer to an item being reserved:
// the item joins the basket if it was in stock, and the command's caller
// gets the cart.
func itemAvailability(ctx functions.Context, a ItemAvailability) error {
	waiting, _ := Waiting.Get(ctx)
	i := slices.IndexFunc(waiting, func(p Pending) bool { return p.ItemID == a.ItemID })
	if i < 0 {
		// nobody asked for it (a cart never does this): give it back
		if a.Status == InStock {
			ctx.Send(functions.Address{Type: InventoryFunction, ID: a.ItemID}, ReleaseItemType.Of(ReleaseItem{Quantity: a.Quantity}))
		}
		return nil
	}
	p := waiting[i]
	setWaiting(ctx, slices.Delete(waiting, i, i+1))
	basket, _ := Basket.Get(ctx)
	var event string
	if a.Status == InStock {
		if basket == nil {
			basket = map[string]int64{}
		}
		basket[a.ItemID] += a.Quantity
		Basket.Set(ctx, basket)
		event = fmt.Sprintf("added %d %s", a.Quantity, a.ItemID)
	} else {
		event = fmt.Sprintf("%s: %d asked, %d in stock", a.ItemID, a.Quantity, a.Left)
	}
	if p.ReplyTo != nil {
		ctx.Send(*p.ReplyTo, CartViewType.Of(view(ctx.Self().ID, basket, event)))
	}
	return nil
}

// clearCart releases the basket's items at their inventories. The cart
// sends it to itself when it has been left alone for AbandonAfter.
func clearCart(ctx functions.Context, _ ClearCart) error {
	basket, _ := Basket.Get(ctx)
	for _, item := range slices.Sorted(maps.Keys(basket)) {
		ctx.Send(functions.Address{Type: InventoryFunction, ID: item}, ReleaseItemType.Of(ReleaseItem{Quantity: basket[item]}))
	}
	Basket.Clear(ctx)
	from, ok := ctx.Caller()
	if ok && from == ctx.Self() {
		return nil // abandoned: nobody to answer
	}
	ctx.CancelDelayed(abandonToken)
	ctx.Reply(CartViewType.Of(view(ctx.Self().ID, nil, "cleared")))
	return nil
}

// checkout hands the basket to the user's checkout; the command's caller
// gets the receipt when the checkout sends it back.
func checkout(ctx functions.Context, _ Checkout) error {
	basket, _ := Basket.Get(ctx)
	if len(basket) == 0 {
		ctx.Reply(CartViewType.Of(view(ctx.Self().ID, nil, "the cart is empty: nothing to check out")))
		return nil
	}
	ctx.Send(functions.Address{Type: CheckoutFunction, ID: ctx.Self().ID}, OrderType.Of(Order{UserID: ctx.Self().ID, Items: lines(basket)}))
	waiting, _ := Waiting.Get(ctx)
	Waiting.Set(ctx, append(waiting, Pending{ReplyTo: caller(ctx)}))
	Basket.Clear(ctx)
	ctx.CancelDelayed(abandonToken)
	return nil
}

// receipt is the checkout's answer to an order: it goes to the caller of
// the checkout command.
func receipt(ctx functions.Context, r Receipt) error {
	waiting, _ := Waiting.Get(ctx)
	i := slices.IndexFunc(waiting, func(p Pending) bool { return p.ItemID == "" })
	if i < 0 {
		return nil
	}
	p := waiting[i]
	setWaiting(ctx, slices.Delete(waiting, i, i+1))
	if p.ReplyTo != nil {
		ctx.Send(*p.ReplyTo, ReceiptType.Of(r))
	}
	return nil
}

// setWaiting stores the waiting commands; none leaves no state behind.
func setWaiting(ctx functions.Context, waiting []Pending) {
	if len(waiting) == 0 {
		Waiting.Clear(ctx)
		return
	}
	Waiting.Set(ctx, waiting)
}

// lines returns the items of a basket, sorted by item id.
func lines(basket map[string]int64) []Line {
	out := make([]Line, 0, len(basket))
	for _, item := range slices.Sorted(maps.Keys(basket)) {
		out = append(out, Line{ItemID: item, Quantity: basket[item]})
	}
	return out
}

func view(user string, basket map[string]int64, event string) CartView {
	return CartView{UserID: user, Items: lines(basket), Event: event}
}
