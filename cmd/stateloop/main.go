// Command stateloop runs stateful functions on Kafka and helps to work with
// them: it runs built-in applications, an embedded Kafka broker, and sends
// and reads Kafka records. Run `stateloop --help` for the commands.
package main

import (
	"os"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/embedded"
)

func main() {
	embedded.ServeIfChild()
	os.Exit(app.Execute(newRootCommand()))
}
