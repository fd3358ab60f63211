package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// The transaction guard closes the transactions that a crash of the
// broker left open.
//
// kfake writes each record batch to its data directory as it arrives, and
// a transaction's commit or abort markers when the transaction ends. When
// the broker is killed (SIGKILL, the OOM killer, a container kill) while
// a transaction is open, its batches are on disk without a marker. kfake
// treats them as aborted when it loads the directory again, but only in
// memory: nothing on disk says so. When the same producer later commits a
// transaction in that partition, the next load reads the old batches as
// part of the committed transaction, and records that were aborted (and
// processed again by their consumers) come back as committed: every
// record is then there twice.
//
// So after each load, before anyone else may connect, the guard scans the
// partitions for transactional batches with no marker after them whose
// producer has no transaction open at the coordinator, and closes each
// such transaction with a marker (WriteTxnMarkers, the request Kafka's own
// `kafka-transactions.sh abort` sends): a commit marker when the
// transaction journal says its producer was committing (the kill split
// the commit, see txnjournal.go), an abort marker otherwise. What it has
// checked is kept in guardFile, so each start scans only what was written
// since.

// guardFile, in the broker's data directory, holds per partition the
// offset from which the next scan starts.
const guardFile = "stateloop-txn-guard.json"

// guardTimeout bounds a guard run.
const guardTimeout = 5 * time.Minute

// guardFetchBytes bounds one fetch of the scan.
const guardFetchBytes = 8 << 20

// openTxn is a transaction with batches in a partition and no marker yet.
type openTxn struct {
	producer int64
	epoch    int16
	first    int64 // offset of its first batch in the partition
}

// guardPartition is the scan's result for one partition.
type guardPartition struct {
	topic string
	part  int32
	end   int64 // the high-water mark scanned to
	open  []openTxn
}

// guardReport says what a guard run did.
type guardReport struct {
	Scanned   int // partitions scanned
	Batches   int // batches read
	Aborted   int // transactions closed with an abort marker
	Committed int // transactions whose commit was completed
	Ongoing   int // open transactions the coordinator knows, left alone
	// Completed lists the partitions where a commit was completed: kfake
	// still holds their records as aborted until it loads them again
	Completed []topicPart
}

// guardTransactions scans the broker at addr (which only the guard can
// reach while it runs, see gatedListener) and closes the transactions a
// crash left open: it completes the commit of those whose producer was
// committing, and aborts the others. dir is the broker's data directory.
func guardTransactions(ctx context.Context, addr, dir string, gate *gatedListener, committing map[producerEpoch]bool, logger *slog.Logger) (guardReport, error) {
	var rep guardReport
	marks, err := loadGuardMarks(dir)
	if err != nil {
		logger.Warn("embedded: transaction guard: unreadable state, scanning everything", "err", err)
		marks = map[string]int64{}
	}
	var dialer net.Dialer
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.MaxVersions(kversion.V3_0_0()),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, host)
			if err == nil {
				gate.allow(c.LocalAddr().String())
			}
			return c, err
		}),
	)
	if err != nil {
		return rep, err
	}
	defer cl.Close()

	parts, err := guardPartitions(ctx, cl)
	if err != nil {
		return rep, err
	}
	var scanned []*guardPartition
	for _, tp := range parts {
		gp, n, err := scanPartition(ctx, cl, tp.topic, tp.part, marks[markKey(tp.topic, tp.part)])
		if err != nil {
			return rep, fmt.Errorf("scan %s/%d: %w", tp.topic, tp.part, err)
		}
		rep.Scanned++
		rep.Batches += n
		scanned = append(scanned, gp)
	}
	ongoing, err := ongoingProducers(ctx, cl, scanned)
	if err != nil {
		return rep, err
	}
	// the markers to write, by producer and outcome
	type markerKey struct {
		pe     producerEpoch
		commit bool
	}
	markers := map[markerKey]map[string][]int32{}
	next := map[string]int64{}
	for _, gp := range scanned {
		from := gp.end
		for _, o := range gp.open {
			if ongoing[tpp{gp.topic, gp.part, o.producer}] {
				rep.Ongoing++
				from = min(from, o.first)
				continue
			}
			k := markerKey{producerEpoch{o.producer, o.epoch}, committing[producerEpoch{o.producer, o.epoch}]}
			if markers[k] == nil {
				markers[k] = map[string][]int32{}
			}
			markers[k][gp.topic] = append(markers[k][gp.topic], gp.part)
			what := "aborting a transaction left open by a crash"
			if k.commit {
				what = "completing the commit of a transaction a crash interrupted"
				rep.Completed = append(rep.Completed, topicPart{gp.topic, gp.part})
			}
			logger.Info("embedded: "+what, "topic", gp.topic, "partition", gp.part, "producer_id", o.producer, "first_offset", o.first)
		}
		next[markKey(gp.topic, gp.part)] = from
	}
	if len(markers) > 0 {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		for k, topics := range markers {
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.ProducerEpoch, m.Committed = k.pe.id, k.pe.epoch, k.commit
			for _, t := range slices.Sorted(maps.Keys(topics)) {
				mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
				mt.Topic, mt.Partitions = t, topics[t]
				m.Topics = append(m.Topics, mt)
				if k.commit {
					rep.Committed += len(topics[t])
				} else {
					rep.Aborted += len(topics[t])
				}
			}
			req.Markers = append(req.Markers, m)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return rep, fmt.Errorf("write transaction markers: %w", err)
		}
		for _, m := range resp.Markers {
			for _, t := range m.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						return rep, fmt.Errorf("write transaction marker for producer %d to %s/%d: %w", m.ProducerID, t.Topic, p.Partition, err)
					}
				}
			}
		}
	}
	if err := saveGuardMarks(dir, next); err != nil {
		return rep, err
	}
	return rep, nil
}

type topicPart struct {
	topic string
	part  int32
}

type tpp struct {
	topic    string
	part     int32
	producer int64
}

// guardPartitions lists every partition of the broker, internal topics
// included (they hold no transactional data on kfake, but cost little).
func guardPartitions(ctx context.Context, cl *kgo.Client) ([]topicPart, error) {
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var out []topicPart
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		for _, p := range t.Partitions {
			out = append(out, topicPart{*t.Topic, p.Partition})
		}
	}
	slices.SortFunc(out, func(a, b topicPart) int {
		if a.topic != b.topic {
			if a.topic < b.topic {
				return -1
			}
			return 1
		}
		return int(a.part - b.part)
	})
	return out, nil
}

// scanPartition reads a partition from max(from, log start) to its
// high-water mark, read_uncommitted, and returns the transactions that
// have batches and no marker after them.
func scanPartition(ctx context.Context, cl *kgo.Client, topic string, part int32, from int64) (*guardPartition, int, error) {
	start, end, err := partitionBounds(ctx, cl, topic, part)
	if err != nil {
		return nil, 0, err
	}
	gp := &guardPartition{topic: topic, part: part, end: end}
	open := map[int64]openTxn{}
	pos := max(from, start)
	if pos > end {
		// the partition was recreated, or the marks are from another
		// directory: scan it all
		pos = start
	}
	batches := 0
	for pos < end {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MaxBytes = guardFetchBytes
		req.IsolationLevel = 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = part
		rp.FetchOffset = pos
		rp.PartitionMaxBytes = guardFetchBytes
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, 0, fmt.Errorf("fetch at %d: %w", pos, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return nil, 0, fmt.Errorf("fetch at %d: unexpected answer", pos)
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return nil, 0, fmt.Errorf("fetch at %d: %w", pos, err)
		}
		n, next, err := guardBatches(p.RecordBatches, pos, open)
		if err != nil {
			return nil, 0, fmt.Errorf("fetch at %d: %w", pos, err)
		}
		batches += n
		if next <= pos {
			return nil, 0, fmt.Errorf("fetch at %d: no progress (high-water mark %d)", pos, end)
		}
		pos = next
	}
	for _, o := range open {
		gp.open = append(gp.open, o)
	}
	slices.SortFunc(gp.open, func(a, b openTxn) int { return int(a.first - b.first) })
	return gp, batches, nil
}

// guardBatches walks the record batches of one fetch answer, opening a
// transaction at a producer's first transactional batch and closing it at
// its control batch. It returns the number of batches and the offset
// after the last one.
func guardBatches(raw []byte, pos int64, open map[int64]openTxn) (int, int64, error) {
	n := 0
	for len(raw) >= 12 {
		length := int(binary.BigEndian.Uint32(raw[8:12]))
		if length < 0 || 12+length > len(raw) {
			break // a partial batch at the end of the answer
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw[:12+length]); err != nil {
			return n, pos, fmt.Errorf("record batch at %d: %w", b.FirstOffset, err)
		}
		raw = raw[12+length:]
		if next := b.FirstOffset + int64(b.LastOffsetDelta) + 1; next > pos {
			pos = next
		}
		n++
		const transactional, control = 0x10, 0x20
		switch {
		case b.Attributes&control != 0:
			delete(open, b.ProducerID)
		case b.Attributes&transactional != 0:
			if _, ok := open[b.ProducerID]; !ok {
				open[b.ProducerID] = openTxn{producer: b.ProducerID, epoch: b.ProducerEpoch, first: b.FirstOffset}
			}
		}
	}
	return n, pos, nil
}

// partitionBounds returns the log start offset and the high-water mark.
func partitionBounds(ctx context.Context, cl *kgo.Client, topic string, part int32) (start, end int64, err error) {
	for i, ts := range []int64{-2, -1} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = part
		rp.Timestamp = ts
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return 0, 0, fmt.Errorf("list offsets: %w", err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return 0, 0, errors.New("list offsets: unexpected answer")
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return 0, 0, fmt.Errorf("list offsets: %w", err)
		}
		if i == 0 {
			start = p.Offset
		} else {
			end = p.Offset
		}
	}
	return start, end, nil
}

// ongoingProducers returns the producers whose transaction in a partition
// the coordinator knows as open (kfake restores those it had at a clean
// shutdown; their clients may still end them).
func ongoingProducers(ctx context.Context, cl *kgo.Client, parts []*guardPartition) (map[tpp]bool, error) {
	req := kmsg.NewPtrDescribeProducersRequest()
	idx := map[string]int{}
	for _, gp := range parts {
		if len(gp.open) == 0 {
			continue
		}
		i, ok := idx[gp.topic]
		if !ok {
			i = len(req.Topics)
			idx[gp.topic] = i
			t := kmsg.NewDescribeProducersRequestTopic()
			t.Topic = gp.topic
			req.Topics = append(req.Topics, t)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, gp.part)
	}
	out := map[tpp]bool{}
	if len(req.Topics) == 0 {
		return out, nil
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe producers: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("describe producers of %s/%d: %w", t.Topic, p.Partition, err)
			}
			for _, ap := range p.ActiveProducers {
				out[tpp{t.Topic, p.Partition, ap.ProducerID}] = true
			}
		}
	}
	return out, nil
}

func markKey(topic string, part int32) string { return topic + "/" + strconv.Itoa(int(part)) }

// loadGuardMarks reads guardFile; a missing file means nothing was
// scanned yet.
func loadGuardMarks(dir string) (map[string]int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, guardFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m struct {
		Next map[string]int64 `json:"next"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.Next == nil {
		m.Next = map[string]int64{}
	}
	return m.Next, nil
}

// saveGuardMarks replaces guardFile (write and rename, so a crash leaves
// the old or the new one).
func saveGuardMarks(dir string, next map[string]int64) error {
	b, err := json.Marshal(struct {
		Next map[string]int64 `json:"next"`
	}{next})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, guardFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save transaction guard state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, guardFile)); err != nil {
		return fmt.Errorf("save transaction guard state: %w", err)
	}
	return nil
}

// gatedListener holds back the connections of everyone but the guard
// until open is called, so that no client starts a transaction that the
// guard could mistake for one a crash left open.
type gatedListener struct {
	net.Listener

	mu      sync.Mutex
	allowed map[string]bool
	opened  bool
	held    []net.Conn
	conns   chan net.Conn
	errc    chan error
	once    sync.Once
	closed  chan struct{}
	cOnce   sync.Once
}

func newGatedListener(ln net.Listener) *gatedListener {
	return &gatedListener{Listener: ln, allowed: map[string]bool{}, conns: make(chan net.Conn),
		errc: make(chan error, 1), closed: make(chan struct{})}
}

// Close closes the listener and every connection still held back.
func (g *gatedListener) Close() error {
	g.cOnce.Do(func() { close(g.closed) })
	err := g.Listener.Close()
	g.mu.Lock()
	held := g.held
	g.held = nil
	g.mu.Unlock()
	for _, c := range held {
		c.Close()
	}
	return err
}

// hand passes a connection to Accept, or closes it once the listener is.
func (g *gatedListener) hand(c net.Conn) {
	select {
	case g.conns <- c:
	case <-g.closed:
		c.Close()
	}
}

func (g *gatedListener) start() {
	g.once.Do(func() {
		go func() {
			for {
				c, err := g.Listener.Accept()
				if err != nil {
					g.errc <- err
					return
				}
				g.mu.Lock()
				pass := g.opened || g.allowed[c.RemoteAddr().String()]
				if !pass {
					g.held = append(g.held, c)
				}
				g.mu.Unlock()
				if pass {
					g.hand(c)
				}
			}
		}()
	})
}

// Accept returns the next connection the gate lets through.
func (g *gatedListener) Accept() (net.Conn, error) {
	g.start()
	select {
	case c := <-g.conns:
		return c, nil
	case err := <-g.errc:
		g.errc <- err
		return nil, err
	case <-g.closed:
		return nil, net.ErrClosed
	}
}

// allow lets the connection from a local address through (the guard's).
func (g *gatedListener) allow(remote string) {
	g.mu.Lock()
	g.allowed[remote] = true
	var pass []net.Conn
	g.held = slices.DeleteFunc(g.held, func(c net.Conn) bool {
		if c.RemoteAddr().String() == remote {
			pass = append(pass, c)
			return true
		}
		return false
	})
	g.mu.Unlock()
	for _, c := range pass {
		go g.hand(c)
	}
}

// open lets everyone through, the connections held back first.
func (g *gatedListener) open() {
	g.mu.Lock()
	g.opened = true
	held := g.held
	g.held = nil
	g.mu.Unlock()
	for _, c := range held {
		go g.hand(c)
	}
}
