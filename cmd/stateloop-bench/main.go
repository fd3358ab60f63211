// Command stateloop-bench measures the stateloop runtime: throughput,
// latency and CPU cost against a hand-written sarama exactly-once loop on
// the same broker, of remote functions over HTTP, of stream threads, of
// chains of functions and of delayed messages. Run `stateloop-bench
// --help`; docs/benchmarks.md explains the figures.
//
// It is a development tool, built apart from the stateloop command so that
// the production binary does not carry the bench's code and its
// dependencies (the raw loop, the StateFun Go SDK and its function server).
package main

import (
	"os"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/internal/bench"
)

func main() {
	embedded.ServeIfChild()
	bench.ServeInstanceIfChild()
	os.Exit(app.Execute(newBenchCommand()))
}
