// Package gokaview lets a Goka application read the state of a stateloop
// application with a goka.View (github.com/lovoo/goka).
//
// The state of function type T lives in the compacted table topic
// <app>-<T>-table, which is the group table of the Goka group <app>-<T>:
// the key is the function id, the value a StateRecord protobuf with every
// state value of the address (see docs/topics-and-formats.md). Ids are
// partitioned as Goka's default hasher does, so a view finds them.
//
// A stock goka.View cannot read such a table, because stateloop writes it
// only in Kafka transactions:
//
//   - the view's consumer reads read_uncommitted, so it shows values of
//     aborted transactions, which the processor has thrown away;
//   - the view recovers a partition until it has consumed the record at the
//     high water mark minus one, but under transactions that offset is
//     almost always a commit (or abort) marker, which no consumer ever
//     receives: the view stays in recovery for as long as the application
//     writes nothing to that partition.
//
// [Options] fixes both: its consumer reads read_committed, and its topic
// manager ends recovery one past the last committed data record of each
// partition. Their metadata requests never create a topic: a view of a
// table that does not exist is an error ([ErrNoTable] from [NewView]), not
// a new topic with the broker's defaults (Kafka's auto.create.topics.enable
// is true by default), which the application could not use.
//
// [NewView] returns a [View], a goka.View that also closes the Kafka
// clients of its consumer and topic manager when Run returns (goka's View
// never closes them, so a stopped goka view keeps its connections and
// goroutines) and whose WaitRunning waits for every partition. A
// goka.View built from [Options] yourself has goka's behaviour. [StateCodec] decodes a table value into a [State], and [Value]
// or [Get] decode one value of it with its functions.Type or
// functions.State.
//
// Reading the visits of the greeter example:
//
//	topo := greeter.Topology()
//	view, err := gokaview.NewView(brokers, topo, greeter.GreetType,
//		goka.WithViewStorageBuilder(storage.MemoryBuilder()))
//	if err != nil {
//		return err
//	}
//	go view.Run(ctx)
//	select {
//	case <-view.WaitRunning(): // recovered: every committed value is in
//	case <-ctx.Done():
//		return ctx.Err()
//	}
//	visits, ok, err := gokaview.Get(view, "Alice", greeter.Visits)
//	if err != nil {
//		return err
//	}
//	fmt.Println(visits, ok) // e.g. 3 true, and it follows new visits
//
// Without [NewView], pass the pieces to goka yourself:
//
//	view, err := goka.NewView(brokers, gokaview.Table(topo, greeter.GreetType),
//		gokaview.StateCodec{}, gokaview.Options()...)
//	...
//	v, err := view.Get("Alice") // a gokaview.State, or nil
//	s, _ := v.(gokaview.State)
//	visits, ok, err := gokaview.Value(s, "visits", functions.LongType)
//
// A view is read-only: never write to a table topic yourself; it belongs
// to the processor.
package gokaview
