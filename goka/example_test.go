package gokainterop_test

import (
	"context"
	"fmt"
	"log"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/examples/greeter/greeter"
	"github.com/stateloop/stateloop/functions"
	gokainterop "github.com/stateloop/stateloop/goka"
)

// Reading how often the greeter has seen Alice with a goka view. The view
// recovers the committed state of the greeter/greet table, then follows
// new commits.
func ExampleNewView() {
	brokers := []string{"localhost:9092"}
	ctx := context.Background()

	view, err := gokainterop.NewView(brokers, greeter.Topology(), greeter.GreetType,
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

	visits, ok, err := gokainterop.Get(view, "Alice", greeter.Visits)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(visits, ok)
}

// Greeting Alice from a goka emitter: the message goes to the address
// greeter/greet/Alice, keyed by "Alice".
func ExampleEmit() {
	brokers := []string{"localhost:9092"}

	em, err := gokainterop.NewEmitter(brokers, greeter.Topology())
	if err != nil {
		log.Fatal(err)
	}
	defer em.Finish()
	to := functions.Address{Type: greeter.GreetType, ID: "Alice"}
	if err := gokainterop.EmitSync(em, to, greeter.NameType.Of("Alice")); err != nil {
		log.Fatal(err)
	}
}

// A goka processor that reads the greetings, the greeter's egress topic,
// read_committed, from the topic's start.
func ExampleProcessorOptions() {
	brokers := []string{"localhost:9092"}

	gg := goka.DefineGroup("greeting-printer",
		goka.Input(goka.Stream(greeter.GreetingsTopic), gokainterop.Codec(codec.Text()), func(ctx goka.Context, msg any) {
			fmt.Printf("%s: %s\n", ctx.Key(), msg.(string))
		}))
	cfg := goka.DefaultConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	p, err := goka.NewProcessor(brokers, gg, gokainterop.ProcessorOptions(gokainterop.WithSaramaConfig(cfg))...)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// The parts of NewView, for goka.NewView.
func ExampleViewOptions() {
	brokers := []string{"localhost:9092"}
	topo := greeter.Topology()

	view, err := goka.NewView(brokers, gokainterop.Table(topo, greeter.GreetType), gokainterop.StateCodec{},
		append(gokainterop.ViewOptions(topo), goka.WithViewStorageBuilder(storage.MemoryBuilder()))...)
	if err != nil {
		log.Fatal(err)
	}
	go view.Run(context.Background())
	<-view.WaitRunning()

	v, err := view.Get("Alice") // a gokainterop.State, or nil
	if err != nil {
		log.Fatal(err)
	}
	s, _ := v.(gokainterop.State)
	visits, ok, err := gokainterop.Value(s, greeter.Visits.Name(), greeter.Visits.Type())
	fmt.Println(visits, ok, err)
}
