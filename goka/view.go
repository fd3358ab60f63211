package gokainterop

import (
	"fmt"
	"hash"
	"time"

	"github.com/lovoo/goka"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/topology"
)

// Group returns the Goka group of function type fn: the group whose table
// ([Table]) holds the state of fn. No Goka processor may run in this group:
// the stateloop application is its only writer.
func Group(topo topology.Topology, fn functions.TypeName) goka.Group {
	return goka.Group(topo.Group(fn))
}

// Table returns the table topic of function type fn, the group table of
// [Group]: key = function id, value = the address's state record.
func Table(topo topology.Topology, fn functions.TypeName) goka.Table {
	return gokaview.Table(topo, fn)
}

// State is the state of one function address as a table record holds it:
// every value by state name, with its type name and encoded bytes. Decode
// a value with [Value].
type State = gokaview.State

// StateCodec is the goka.Codec of table values: Decode returns a [State].
// (A tombstone never reaches it: goka deletes the key.) Encode is there for
// goka's tester; never write to a table topic, it belongs to the stateloop
// application.
type StateCodec = gokaview.StateCodec

// ViewOptions returns the goka view options a view of a table of topo
// needs: a consumer that reads read_committed, a topic manager that ends
// recovery at the last committed record of each partition (both from
// package gokaview), and [Hasher] for topo. Pass them to goka.NewView with
// [Table] and [StateCodec], before options of your own.
func ViewOptions(topo topology.Topology, opts ...Option) []goka.ViewOption {
	s := newSettings(opts)
	return append(gokaview.Options(s.gokaview()...), goka.WithViewHasher(Hasher(topo)))
}

// NewView returns a goka view of the state of function type fn, built with
// [Table], [StateCodec] and [ViewOptions]: its values are [State]s. opts are
// applied after those: set the storage (goka's default keeps it on disk
// under /tmp/goka/view), the logger or the client id. Run the view and wait
// for goka.View.WaitRunning before reading it. It returns goka's error if
// the table topic does not exist yet: start the stateloop application
// first, it creates it.
func NewView(brokers []string, topo topology.Topology, fn functions.TypeName, opts ...goka.ViewOption) (*goka.View, error) {
	return goka.NewView(brokers, Table(topo, fn), StateCodec{}, append(ViewOptions(topo), opts...)...)
}

// Value decodes the state value called name with type t. It returns false
// if the state has no such value or the value has expired (a value of an
// expiring state stays in the table until the application's next sweep,
// about a second; an invocation would not see it). It returns an error
// wrapping a *functions.DecodeError if the value was written with another
// type name or does not decode.
func Value[T any](s State, name string, t functions.Type[T]) (T, bool, error) {
	if v, ok := s[name]; ok && !v.ExpiresAt.IsZero() && !time.Now().Before(v.ExpiresAt) {
		var zero T
		return zero, false, nil
	}
	return gokaview.Value(s, name, t)
}

// Get reads the state value st of the function with id id from a view
// built with [StateCodec] (see [NewView]), as [Value] does. It returns
// false if the address has no such value, and goka's error if the view
// cannot be read (it is not running, say).
func Get[T any](v *goka.View, id string, st functions.State[T]) (T, bool, error) {
	var zero T
	x, err := v.Get(id)
	if err != nil || x == nil {
		return zero, false, err
	}
	s, ok := x.(State)
	if !ok {
		return zero, false, fmt.Errorf("gokainterop: view of %s holds %T, not State: build it with StateCodec", v.Topic(), x)
	}
	return Value(s, st.Name(), st.Type())
}

// Hasher returns Goka's default hasher (FNV-1a, 32 bit), corrected for the
// partition count of topo, for goka.WithViewHasher (and
// goka.WithEmitterHasher, where it changes nothing).
//
// Goka's default hasher agrees with stateloop on the partition of every id
// but those whose hash is 0x80000000: a goka.View negates the hash before
// the modulo, and -math.MinInt32 is math.MinInt32 again, so when the
// partition count N is not a power of two such an id gets a negative
// partition and View.Get panics with an index out of range. Hasher returns
// 2^31 mod N for that hash instead, the partition stateloop (and sarama's
// hash partitioner) give it; for every other hash it returns FNV-1a.
func Hasher(topo topology.Topology) func() hash.Hash32 {
	return gokaview.Hasher(topo.PartitionCount())
}
