package shop

import (
	"fmt"

	"github.com/stateloop/stateloop/functions"
)

// Stock is the state of an inventory: how many of the item are in stock
// and not reserved.
var Stock = functions.NewState("stock", functions.LongType)

func inventory() functions.Function {
	return functions.Router(
		functions.Handle(RestockItemType, restock),
		functions.Handle(RequestItemType, requestItem),
		functions.Handle(ReleaseItemType, releaseItem),
	)
}

// restock adds to the stock and answers with the new level (to an HTTP
// request with ?wait=; a record from Kafka has nobody to answer).
func restock(ctx functions.Context, r RestockItem) error {
	if r.Quantity < 1 {
		return functions.Permanent(fmt.Errorf("shop: restock %s: quantity %d: want at least 1", ctx.Self().ID, r.Quantity))
	}
	n, _ := Stock.Get(ctx)
	Stock.Set(ctx, n+r.Quantity)
	ctx.Reply(StockLevelType.Of(StockLevel{ItemID: ctx.Self().ID, InStock: n + r.Quantity}))
	return nil
}

// requestItem reserves the quantity if it is in stock, and answers the
// cart either way.
func requestItem(ctx functions.Context, r RequestItem) error {
	n, _ := Stock.Get(ctx)
	a := ItemAvailability{ItemID: ctx.Self().ID, Status: OutOfStock, Quantity: r.Quantity, Left: n}
	if r.Quantity <= n {
		a.Status, a.Left = InStock, n-r.Quantity
		Stock.Set(ctx, a.Left)
	}
	ctx.Reply(ItemAvailabilityType.Of(a))
	return nil
}

// releaseItem takes back what a cart had reserved.
func releaseItem(ctx functions.Context, r ReleaseItem) error {
	n, _ := Stock.Get(ctx)
	Stock.Set(ctx, n+r.Quantity)
	return nil
}
