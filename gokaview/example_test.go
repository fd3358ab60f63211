package gokaview_test

import (
	"context"
	"fmt"
	"log"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/gokaview"
)

// Reading how often the greeter has seen Alice. The view recovers the
// committed state of the greeter/greet table, then follows new commits.
func ExampleNewView() {
	brokers := []string{"localhost:9092"}
	ctx := context.Background()

	view, err := gokaview.NewView(brokers, greeter.Topology(), greeter.GreetType,
		goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if err := view.Run(ctx); err != nil {
			log.Print(err)
		}
	}()
	<-view.WaitRunning()

	visits, ok, err := gokaview.Get(view, "Alice", greeter.Visits)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(visits, ok)
}

// The same with goka's own constructor: Options, the table and StateCodec.
func ExampleOptions() {
	brokers := []string{"localhost:9092"}
	topo := greeter.Topology()

	view, err := goka.NewView(brokers, gokaview.Table(topo, greeter.GreetType), gokaview.StateCodec{},
		append(gokaview.Options(), goka.WithViewStorageBuilder(storage.MemoryBuilder()))...)
	if err != nil {
		log.Fatal(err)
	}
	go view.Run(context.Background())
	<-view.WaitRunning()

	v, err := view.Get("Alice") // a gokaview.State, or nil
	if err != nil {
		log.Fatal(err)
	}
	s, _ := v.(gokaview.State)
	visits, ok, err := gokaview.Value(s, greeter.Visits.Name(), greeter.Visits.Type())
	fmt.Println(visits, ok, err)
}
