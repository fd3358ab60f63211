package shop

import (
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// App is the application's name: its consumer group and the prefix of its
// internal topics.
const App = "shopping-cart"

// The function types; their ids are in parentheses.
const (
	// CartFunction is a user's cart (user id).
	CartFunction functions.TypeName = "shop/cart"
	// InventoryFunction is the stock of an item (item id).
	InventoryFunction functions.TypeName = "shop/inventory"
	// CheckoutFunction writes the receipts of a user's orders (user id).
	CheckoutFunction functions.TypeName = "shop/checkout"
)

// The Kafka topics of the application: four ingresses of JSON commands and
// the egress of receipts.
const (
	AddToCartTopic topology.Topic = "add-to-cart"
	ClearCartTopic topology.Topic = "clear-cart"
	CheckoutTopic  topology.Topic = "checkout"
	RestockTopic   topology.Topic = "restock"
	ReceiptsTopic  topology.Topic = "receipts"
)

// AbandonAfter is how long a cart keeps its items after its last change
// before it releases them (as if cleared).
const AbandonAfter = 30 * time.Minute

// AddToCart asks the cart of UserID to reserve Quantity of ItemID. To a
// cart's address (HTTP), UserID may be left out: the address's id is the
// user.
type AddToCart struct {
	UserID   string `json:"userId,omitempty"`
	ItemID   string `json:"itemId"`
	Quantity int64  `json:"quantity"`
}

// ClearCart empties a cart and releases its items.
type ClearCart struct {
	UserID string `json:"userId,omitempty"`
}

// Checkout turns a cart's items into an order, whose receipt goes to the
// topic receipts.
type Checkout struct {
	UserID string `json:"userId,omitempty"`
}

// RestockItem adds Quantity to the stock of ItemID.
type RestockItem struct {
	ItemID   string `json:"itemId,omitempty"`
	Quantity int64  `json:"quantity"`
}

// RequestItem asks an inventory to reserve Quantity (from a cart).
type RequestItem struct {
	Quantity int64 `json:"quantity"`
}

// ReleaseItem gives Quantity back to an inventory (from a cart).
type ReleaseItem struct {
	Quantity int64 `json:"quantity"`
}

// The statuses of an [ItemAvailability].
const (
	InStock    = "IN_STOCK"
	OutOfStock = "OUT_OF_STOCK"
)

// ItemAvailability is an inventory's answer to a [RequestItem]: InStock
// (the quantity is reserved) or OutOfStock; Left is the stock left.
type ItemAvailability struct {
	ItemID   string `json:"itemId"`
	Status   string `json:"status"`
	Quantity int64  `json:"quantity"`
	Left     int64  `json:"left"`
}

// Line is an item and its quantity.
type Line struct {
	ItemID   string `json:"itemId"`
	Quantity int64  `json:"quantity"`
}

// Order is what a cart hands to the checkout: its items, by item id.
type Order struct {
	UserID string `json:"userId"`
	Items  []Line `json:"items"`
}

// Receipt is the record of an order on the topic receipts, keyed by the
// user. OrderID is "<user>-<n>" for the user's n-th order.
type Receipt struct {
	OrderID    string `json:"orderId"`
	UserID     string `json:"userId"`
	Items      []Line `json:"items"`
	TotalItems int64  `json:"totalItems"`
}

// CartView is a cart's answer to a command: its items, by item id, and
// what happened.
type CartView struct {
	UserID string `json:"userId"`
	Items  []Line `json:"items"`
	Event  string `json:"event"`
}

// StockLevel is an inventory's answer to a restock.
type StockLevel struct {
	ItemID  string `json:"itemId"`
	InStock int64  `json:"inStock"`
}

// The message types, all JSON. Over HTTP, name them in the Content-Type
// application/vnd.<type name> (or the Stateloop-Type header).
var (
	AddToCartType        = functions.NewType("shop/AddToCart", codec.JSON[AddToCart]())
	ClearCartType        = functions.NewType("shop/ClearCart", codec.JSON[ClearCart]())
	CheckoutType         = functions.NewType("shop/Checkout", codec.JSON[Checkout]())
	RestockItemType      = functions.NewType("shop/RestockItem", codec.JSON[RestockItem]())
	RequestItemType      = functions.NewType("shop/RequestItem", codec.JSON[RequestItem]())
	ReleaseItemType      = functions.NewType("shop/ReleaseItem", codec.JSON[ReleaseItem]())
	ItemAvailabilityType = functions.NewType("shop/ItemAvailability", codec.JSON[ItemAvailability]())
	OrderType            = functions.NewType("shop/Order", codec.JSON[Order]())
	ReceiptType          = functions.NewType("shop/Receipt", codec.JSON[Receipt]())
	CartViewType         = functions.NewType("shop/CartView", codec.JSON[CartView]())
	StockLevelType       = functions.NewType("shop/StockLevel", codec.JSON[StockLevel]())
)

// Receipts is the Kafka egress of receipts, to ReceiptsTopic.
var Receipts = functions.NewKafkaEgress("shop/receipts", string(ReceiptsTopic), codec.JSON[Receipt]())
