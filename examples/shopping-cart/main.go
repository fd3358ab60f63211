// Command shopping-cart runs the shopping cart example application; it
// takes the same flags as `stateloop run shopping-cart`. See README.md.
package main

import (
	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/examples/shopping-cart/shop"
)

func main() {
	app.Main(shop.Build)
}
