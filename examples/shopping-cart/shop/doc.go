// Package shop is the stateloop version of the shopping cart of Apache
// Flink Stateful Functions' playground: a cart per user, an inventory per
// item that reserves and releases stock, and a checkout that writes a
// receipt to Kafka.
//
// # Concepts
//
// Three function types message each other:
//
//	shop/cart/<user>       the user's cart: the items reserved for the user
//	shop/inventory/<item>  the stock of one item
//	shop/checkout/<user>   the user's orders: it writes their receipts
//
// Adding an item to a cart ([AddToCart]) asks the item's inventory to
// reserve the quantity ([RequestItem]); the inventory answers with
// [ItemAvailability], and the cart keeps the item only if it was in
// stock. Clearing a cart ([ClearCart]) releases its items at their
// inventories ([ReleaseItem]); so does a cart left alone for
// [AbandonAfter], through a delayed message to itself. Checking out
// ([Checkout]) hands the cart's items to the checkout as an [Order]; the
// checkout writes a [Receipt], keyed by the user, to the Kafka egress
// [Receipts] (the topic "receipts") and sends it back to the cart.
//
// The commands come as JSON records on the Kafka topics add-to-cart,
// clear-cart, checkout (routed to the cart by their field "userId") and
// restock (routed to the inventory by "itemId"), or as messages to an
// address through the HTTP listener (stateloop run --http). A cart answers
// the caller of every command: an HTTP request with ?wait= gets the cart
// ([CartView]) once the inventory has answered, or the receipt; a record
// from Kafka has no caller, so the answer is dropped. The inventory
// answers a restock with its [StockLevel].
//
// [Build] returns the application, named "shopping-cart", for app.Main
// and `stateloop run shopping-cart`.
//
// # Errors
//
// A command with a quantity below 1, or a record whose value is not JSON
// or lacks its routing field, goes to the dead-letter topic
// shopping-cart-dlq with the reason.
package shop
