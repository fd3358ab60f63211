// Command stateloop-smoke runs stateloop's version of Apache Flink StateFun's
// smoke end-to-end test: random commands while worker processes are killed,
// then every count checked. Run `stateloop-smoke --help`; docs/smoke.md
// explains a run.
//
// It is a development tool, built apart from the stateloop command so that
// the production binary does not carry the smoke driver. Its workers are
// this program, re-executed as `stateloop-smoke worker`.
package main

import (
	"os"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/embedded"
)

func main() {
	embedded.ServeIfChild()
	os.Exit(app.Execute(newSmokeCommand()))
}
