package gokaview

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// Table returns the table topic of function type fn as a goka table. It is
// the group table of the Goka group topo.Group(fn).
func Table(topo topology.Topology, fn functions.TypeName) goka.Table {
	return goka.Table(topo.TableTopic(fn))
}

// ErrNoTable is the error of [NewView] when the table topic does not
// exist: the function type has not been invoked yet (the processor creates
// a table on the type's first invocation), or the application name is
// wrong.
var ErrNoTable = errors.New("gokaview: the table topic does not exist")

// NewView returns a view of the state of function type fn, built with
// [Options] and [StateCodec]: its values are [State]s. Options in opts are
// applied after those, so they can replace the storage (goka's default keeps
// it on disk under /tmp/goka/view), the logger or the client id. Run the
// view and wait for it to recover before reading it.
//
// NewView creates no topic: if the table topic does not exist it returns
// an error wrapping [ErrNoTable]. It returns other errors when Kafka
// cannot be reached or goka cannot build the view.
func NewView(brokers []string, topo topology.Topology, fn functions.TypeName, opts ...goka.ViewOption) (*View, error) {
	n, err := partitionCount(brokers, string(Table(topo, fn)))
	if err != nil {
		return nil, err
	}
	v := &View{stopped: make(chan struct{})}
	opts = append([]goka.ViewOption{
		goka.WithViewConsumerSaramaBuilder(v.keepConsumer(ConsumerBuilder())),
		goka.WithViewTopicManagerBuilder(v.keepTopicManager(TopicManagerBuilder())),
		goka.WithViewHasher(Hasher(n)),
	}, opts...)
	gv, err := goka.NewView(brokers, Table(topo, fn), StateCodec{}, opts...)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("gokaview: view of %s: %w", Table(topo, fn), err), v.Close())
	}
	v.View = gv
	return v, nil
}

// View is a goka view of a stateloop table, made by [NewView]: a
// *goka.View (Get, Iterator and the rest are goka's) that mends two
// problems of goka's View:
//
//   - goka never closes the consumer and the topic manager it builds for a
//     view, so every view that has run would keep their Kafka connections
//     and goroutines for good. View owns them, and its Run closes them
//     when it returns.
//   - goka.View.WaitRunning can close while a partition has not started
//     yet (goka merges the partitions' states as they report them, so the
//     view is "running" once those that have reported are), and a Get on
//     that partition fails. View's WaitRunning waits until every
//     partition has recovered.
//
// A View runs once: after Run has returned it holds nothing and reads
// nothing. Close releases a view that is never run.
type View struct {
	*goka.View

	mu      sync.Mutex
	closers []io.Closer
	closed  bool

	stopped  chan struct{} // closed by Close
	runCtx   context.Context
	waitOnce sync.Once
	running  chan struct{}
}

// Run runs the view, as goka.View.Run does, until ctx is cancelled or it
// fails; then it closes the view's Kafka clients. It returns goka's error
// (nil after ctx was cancelled), joined with any error of closing them.
func (v *View) Run(ctx context.Context) error {
	v.mu.Lock()
	v.runCtx = ctx
	v.mu.Unlock()
	err := v.View.Run(ctx)
	return errors.Join(err, v.Close())
}

// WaitRunning returns a channel that is closed once every partition of the
// view has recovered: from then on Get answers the table's committed
// state and follows it. It stays open if the view stops first.
func (v *View) WaitRunning() <-chan struct{} {
	v.waitOnce.Do(func() {
		v.running = make(chan struct{})
		go v.waitRecovered()
	})
	return v.running
}

func (v *View) waitRecovered() {
	select {
	case <-v.View.WaitRunning():
	case <-v.stopped:
		return
	}
	v.mu.Lock()
	ctx := v.runCtx
	v.mu.Unlock()
	if ctx == nil { // goka's view runs only in Run
		ctx = context.Background()
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	// goka's Recovered reads the view's partitions, which goka drops as
	// its Run ends: poll only while the view runs
	for {
		select {
		case <-v.stopped:
			return
		case <-ctx.Done():
			return
		default:
		}
		if v.View.Recovered() {
			close(v.running)
			return
		}
		select {
		case <-v.stopped:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Close closes the view's Kafka clients. Run calls it when it returns;
// call it for a view that is never run. Later calls do nothing.
func (v *View) Close() error {
	v.mu.Lock()
	closers := v.closers
	if !v.closed {
		close(v.stopped)
	}
	v.closers, v.closed = nil, true
	v.mu.Unlock()
	var errs []error
	for _, c := range closers {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gokaview: close the view's Kafka client: %w", err))
		}
	}
	return errors.Join(errs...)
}

// keep records c to be closed by Close, or closes it now if the view is
// closed already.
func (v *View) keep(c io.Closer) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return errors.Join(errors.New("gokaview: the view is closed"), c.Close())
	}
	v.closers = append(v.closers, c)
	return nil
}

func (v *View) keepConsumer(b goka.SaramaConsumerBuilder) goka.SaramaConsumerBuilder {
	return func(brokers []string, clientID string) (sarama.Consumer, error) {
		c, err := b(brokers, clientID)
		if err != nil {
			return nil, err
		}
		return c, v.keep(c)
	}
}

// keepTopicManager records the topic managers goka builds. goka closes
// the one it uses to list the partitions itself, but never the one the
// view keeps; closing one twice does nothing.
func (v *View) keepTopicManager(b goka.TopicManagerBuilder) goka.TopicManagerBuilder {
	return func(brokers []string) (goka.TopicManager, error) {
		tm, err := b(brokers)
		if err != nil {
			return nil, err
		}
		return tm, v.keep(tm)
	}
}

// Reader is what [Get] reads: a [View], or a *goka.View built with
// [StateCodec].
type Reader interface {
	Get(key string) (any, error)
	Topic() string
}

// partitionCount asks Kafka how many partitions a table has, with a
// metadata request that does not create it; a missing table is
// ErrNoTable.
func partitionCount(brokers []string, topic string) (int32, error) {
	sc, _ := newSettings(nil)
	client, err := sarama.NewClient(brokers, &sc)
	if err != nil {
		return 0, fmt.Errorf("gokaview: connect to Kafka at %s: %w", strings.Join(brokers, ","), err)
	}
	defer client.Close()
	counts, err := kafkaread.PartitionCounts(client, []string{topic})
	if err != nil {
		return 0, fmt.Errorf("gokaview: table %s: %w", topic, err)
	}
	n, ok := counts[topic]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrNoTable, topic)
	}
	return n, nil
}

// Option configures [Options], [ConsumerBuilder] and [TopicManagerBuilder].
type Option func(*settings)

type settings struct {
	sarama       *sarama.Config
	topicManager *goka.TopicManagerConfig
}

// WithSaramaConfig sets the sarama configuration the view's consumer and
// topic manager are built from (default: goka.DefaultConfig() with Kafka
// version 3.0). It is copied. The copies read read_committed, their version
// is raised to 0.11 (the first with transactions) if it is lower, their
// metadata requests never create a topic (Metadata.AllowAutoTopicCreation
// is false: a view only reads), and the consumer gets the view's client
// id.
func WithSaramaConfig(c *sarama.Config) Option {
	return func(s *settings) { s.sarama = c }
}

// WithTopicManagerConfig sets the configuration of goka's topic manager,
// which the view uses for everything but the end of a partition (default:
// goka.NewTopicManagerConfig()).
func WithTopicManagerConfig(c *goka.TopicManagerConfig) Option {
	return func(s *settings) { s.topicManager = c }
}

func newSettings(opts []Option) (sarama.Config, *goka.TopicManagerConfig) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	var c sarama.Config
	if s.sarama != nil {
		c = *s.sarama
	} else {
		c = *goka.DefaultConfig()
		c.Version = sarama.V3_0_0_0
		c.ClientID = "goka-topic-manager"
	}
	if !c.Version.IsAtLeast(sarama.V0_11_0_0) {
		c.Version = sarama.V0_11_0_0
	}
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	// Asking about a missing topic must not create it with the broker's
	// defaults (Kafka's auto.create.topics.enable is true by default).
	c.Metadata.AllowAutoTopicCreation = false
	tm := s.topicManager
	if tm == nil {
		tm = goka.NewTopicManagerConfig()
	}
	return c, tm
}

// Options returns the goka view options a view of a stateloop table needs:
//
//   - a consumer that reads read_committed ([ConsumerBuilder]). Tables are
//     written by transactional producers, and a goka view reads
//     read_uncommitted by default, so it would show values of aborted
//     transactions;
//   - a topic manager whose "newest" offset of a partition is one past its
//     last committed data record ([TopicManagerBuilder]). A goka view
//     recovers until it has consumed the record before the newest offset,
//     but under transactions the last offset of a partition is a commit or
//     abort marker, which no consumer ever receives: with the high water
//     mark as newest offset a view never finishes recovering.
//
// Pass them to goka.NewView with StateCodec and the table, or use
// [NewView].
func Options(opts ...Option) []goka.ViewOption {
	return []goka.ViewOption{
		goka.WithViewConsumerSaramaBuilder(ConsumerBuilder(opts...)),
		goka.WithViewTopicManagerBuilder(TopicManagerBuilder(opts...)),
	}
}

// ConsumerBuilder returns a goka consumer builder whose consumers read
// read_committed.
func ConsumerBuilder(opts ...Option) goka.SaramaConsumerBuilder {
	cfg, _ := newSettings(opts)
	return func(brokers []string, clientID string) (sarama.Consumer, error) {
		c := cfg
		c.ClientID = clientID
		return sarama.NewConsumer(brokers, &c)
	}
}

// TopicManagerBuilder returns a goka topic manager builder whose topic
// managers are goka's, except that GetOffset with sarama.OffsetNewest
// returns one past the last committed data record of the partition (its
// log start offset if it has none), found by reading the partition
// read_committed from its tail. That is where a goka view's recovery ends.
func TopicManagerBuilder(opts ...Option) goka.TopicManagerBuilder {
	cfg, tmConfig := newSettings(opts)
	return func(brokers []string) (goka.TopicManager, error) {
		c := cfg
		tm, err := goka.NewTopicManager(brokers, &c, tmConfig)
		if err != nil {
			return nil, err
		}
		client, err := sarama.NewClient(brokers, &c)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("gokaview: %w", err), tm.Close())
		}
		ctx, cancel := context.WithCancel(context.Background())
		return &topicManager{TopicManager: tm, client: client, ctx: ctx, cancel: cancel}, nil
	}
}

type topicManager struct {
	goka.TopicManager
	client sarama.Client
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// notConnectedRetries bounds the retries of GetOffset after
// sarama.ErrNotConnected.
const notConnectedRetries = 5

// GetOffset returns an offset of a partition, as goka's topic manager
// does, except for sarama.OffsetNewest (see TopicManagerBuilder). A view
// asks for the offsets of all its partitions at once, on one client, and
// sarama's Broker.Open marks a broker open before it starts connecting: a
// request sent on it meanwhile fails with ErrNotConnected (and sarama's
// own GetOffset then closes the broker under the others). GetOffset asks
// again after that error.
func (m *topicManager) GetOffset(topic string, partition int32, t int64) (int64, error) {
	for attempt := 1; ; attempt++ {
		off, err := m.getOffset(topic, partition, t)
		if !errors.Is(err, sarama.ErrNotConnected) || attempt > notConnectedRetries || m.ctx.Err() != nil {
			return off, err
		}
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
	}
}

func (m *topicManager) getOffset(topic string, partition int32, t int64) (int64, error) {
	if t != sarama.OffsetNewest {
		return m.TopicManager.GetOffset(topic, partition, t)
	}
	last, err := kafkaread.LastCommittedOffset(m.ctx, m.client, topic, partition, 0)
	if err != nil {
		return 0, fmt.Errorf("gokaview: last committed record of %s/%d: %w", topic, partition, err)
	}
	if last >= 0 {
		return last + 1, nil
	}
	start, _, _, err := kafkaread.Ends(m.client, topic, partition)
	if err != nil {
		return 0, fmt.Errorf("gokaview: start of %s/%d: %w", topic, partition, err)
	}
	return start, nil
}

// Close closes the topic manager's clients; later calls do nothing.
func (m *topicManager) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		m.closeErr = errors.Join(m.TopicManager.Close(), m.client.Close())
	})
	return m.closeErr
}

// State is the state of one function address, as a table record holds it:
// every value the address has, by state name, with the type name it was
// written with and its encoded bytes. Decode a value with [Value].
type State map[string]functions.StoredValue

// StateCodec is the goka codec of table values: it decodes a table record
// into a [State] and encodes a State (or *State) into one.
type StateCodec struct{}

// Encode encodes a State with its values sorted by name, as stateloop
// writes it. An empty State encodes to nil, which Kafka stores as a
// tombstone.
func (StateCodec) Encode(value any) ([]byte, error) {
	var s State
	switch v := value.(type) {
	case State:
		s = v
	case *State:
		if v != nil {
			s = *v
		}
	case nil:
	default:
		return nil, fmt.Errorf("gokaview: cannot encode %T, only State", value)
	}
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	return wire.AppendStateRecord(nil, wire.StateRecord(s), names), nil
}

// Decode decodes a table record into a State. The State does not alias
// data.
func (StateCodec) Decode(data []byte) (any, error) {
	r, err := wire.DecodeStateRecord(bytes.Clone(data))
	if err != nil {
		return nil, fmt.Errorf("gokaview: %w", err)
	}
	return State(r), nil
}

// Value decodes the value called name with type t. It returns false if
// the state has no such value, and an error (wrapping a
// *functions.DecodeError) if the value was written with another type name
// or does not decode.
func Value[T any](s State, name string, t functions.Type[T]) (T, bool, error) {
	var zero T
	v, ok := s[name]
	if !ok {
		return zero, false, nil
	}
	x, err := t.As(functions.NewMessage(v.TypeName, v.Value))
	if err != nil {
		return zero, false, fmt.Errorf("gokaview: state %q: %w", name, err)
	}
	return x, true, nil
}

// Get reads the state value st of the function with id id from a view
// built with [StateCodec] (see [NewView]). It returns false if the address
// has no such value.
func Get[T any](v Reader, id string, st functions.State[T]) (T, bool, error) {
	var zero T
	x, err := v.Get(id)
	if err != nil || x == nil {
		return zero, false, err
	}
	s, ok := x.(State)
	if !ok {
		return zero, false, fmt.Errorf("gokaview: view of %s holds %T, not State: build it with StateCodec", v.Topic(), x)
	}
	return Value(s, st.Name(), st.Type())
}

// Display turns the state of an address into values for people to read,
// by name: each with its type name, its value as [codec.Display] shows
// it, and its expiry time if it expires. The result marshals to JSON.
func Display(s State) map[string]DisplayValue {
	out := make(map[string]DisplayValue, len(s))
	for name, v := range s {
		d := DisplayValue{Type: string(v.TypeName), Value: codec.Display(string(v.TypeName), v.Value)}
		if !v.ExpiresAt.IsZero() {
			at := v.ExpiresAt.UTC()
			d.ExpiresAt = &at
		}
		out[name] = d
	}
	return out
}

// DisplayValue is one state value as [Display] shows it.
type DisplayValue struct {
	Type      string     `json:"type"`
	Value     any        `json:"value"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Hasher returns Goka's default hasher (FNV-1a, 32 bit), corrected for a
// table of the given partition count, for goka.WithViewHasher. Goka takes
// the partition of a key as the absolute value of int32(hash) mod N; for
// the one hash 0x80000000 that value is negative when N is not a power of
// two, and a view's Get panics (index out of range). Hasher returns
// 2^31 mod N for that hash instead, the partition stateloop (and sarama's
// hash partitioner) give it; every other hash is FNV-1a's.
func Hasher(partitions int32) func() hash.Hash32 {
	n := uint32(max(partitions, 0))
	return func() hash.Hash32 { return &hasher{Hash32: fnv.New32a(), n: n} }
}

type hasher struct {
	hash.Hash32
	n uint32
}

func (h *hasher) Sum32() uint32 {
	s := h.Hash32.Sum32()
	if s == 1<<31 && h.n > 0 {
		return s % h.n
	}
	return s
}

func (h *hasher) Sum(b []byte) []byte { return binary.BigEndian.AppendUint32(b, h.Sum32()) }
