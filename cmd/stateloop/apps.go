package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// application is what a cluster's topics tell about an application: the
// partitions of its loop topic and the function types whose table topics
// exist. The CLI has no topology: an application exists when its loop
// topic does, and has a function type when the type's table topic exists
// (the runtime creates one for every type of its topology at start-up, and
// for a type of a namespace it serves as a whole when the type is first
// invoked).
type application struct {
	topo   topology.Topology // App and Partitions
	topics []string          // of the whole cluster, sorted
}

// findApplication reads the topics of the cluster and returns the
// application named name. When it has no loop topic, the error says so,
// lists the applications there are, and what to do.
func findApplication(client sarama.Client, brokers []string, name string) (*application, error) {
	if err := client.RefreshMetadata(); err != nil {
		return nil, fmt.Errorf("read the topics of the cluster: %w", err)
	}
	topics, err := client.Topics()
	if err != nil {
		return nil, fmt.Errorf("read the topics of the cluster: %w", err)
	}
	slices.Sort(topics)
	a := &application{topo: topology.Topology{App: name}, topics: topics}
	loop := string(a.topo.LoopTopic())
	if !a.has(loop) {
		there := "applications there: " + strings.Join(a.apps(), ", ")
		if len(a.apps()) == 0 {
			there = "there are none"
		}
		start := "start the application once (it creates its topics)"
		if _, ok := findApp(name); ok {
			start = "start it once with `stateloop run " + name + "`"
		}
		return nil, fmt.Errorf("no application %s at %s: there is no topic %s; %s; check --app and --brokers, or %s",
			name, strings.Join(brokers, ","), loop, there, start)
	}
	parts, err := client.Partitions(loop)
	if err != nil {
		return nil, fmt.Errorf("read the partitions of topic %s: %w", loop, err)
	}
	a.topo.Partitions = int32(len(parts))
	return a, nil
}

func (a *application) has(topic string) bool {
	_, ok := slices.BinarySearch(a.topics, topic)
	return ok
}

// apps returns the names of the applications of the cluster: the
// prefixes of the topics X-loop for which X-timers exists too (a topic
// that merely ends in -loop is not an application).
func (a *application) apps() []string {
	var names []string
	for _, t := range a.topics {
		if name, ok := strings.CutSuffix(t, "-loop"); ok && name != "" && a.has(string(topology.Topology{App: name}.TimersTopic())) {
			names = append(names, name)
		}
	}
	return names
}

// types returns the function types whose table topics exist, sorted.
func (a *application) types() []functions.TypeName {
	var out []functions.TypeName
	for _, t := range a.topics {
		if fn, ok := a.topo.TableFunction(t); ok {
			out = append(out, fn)
		}
	}
	return out
}

// checkType returns an error when the application has no table topic for
// fn, naming the function types it has.
func (a *application) checkType(fn functions.TypeName) error {
	table := string(a.topo.TableTopic(fn))
	if a.has(table) {
		return nil
	}
	names := make([]string, 0)
	for _, t := range a.types() {
		names = append(names, string(t))
	}
	has := "it has none"
	if len(names) > 0 {
		has = "its function types: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("application %s has no function type %s: there is no topic %s; %s",
		a.topo.App, fn, table, has)
}
