// Command greeter runs the greeter example application; it takes the same
// flags as `stateloop run greeter`. See README.md.
package main

import (
	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/examples/greeter/greeter"
)

func main() {
	app.Main(greeter.Build)
}
