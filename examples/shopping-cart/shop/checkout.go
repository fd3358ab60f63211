package shop

import (
	"fmt"

	"github.com/stateloop/stateloop/functions"
)

// Orders is the state of a checkout: how many orders the user has placed.
var Orders = functions.NewState("orders", functions.LongType)

func checkoutFunction() functions.Function {
	return functions.Router(functions.Handle(OrderType, placeOrder))
}

// placeOrder writes the order's receipt to the topic receipts and sends it
// back to the cart.
func placeOrder(ctx functions.Context, o Order) error {
	n, _ := Orders.Get(ctx)
	n++
	Orders.Set(ctx, n)
	r := Receipt{OrderID: fmt.Sprintf("%s-%d", ctx.Self().ID, n), UserID: ctx.Self().ID, Items: o.Items}
	for _, l := range o.Items {
		r.TotalItems += l.Quantity
	}
	Receipts.Send(ctx, ctx.Self().ID, r)
	ctx.Reply(ReceiptType.Of(r))
	return nil
}
