package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// The recovery bench (Config.Recovery): how long until an instance serves
// again when it restarts on its local store and when it rebuilds its store
// from the changelog; the throughput of 1, 2 and 3 instances; the longest
// pause of any partition when one instance of three is killed, and when
// it restarts at once.

// Goals of issue 14, printed next to the figures.
const (
	// RestartGoal is the longest time from start to serving again of an
	// instance that restarts on its own local store.
	RestartGoal = 5 * time.Second
	// RebuildGoal is the least rate, records/s, of a rebuild of the state
	// from the changelog into an empty store.
	RebuildGoal = 200_000
	// PauseGoal is the longest pause of a partition when an instance
	// restarts within the session timeout (static membership).
	PauseGoal = 2 * time.Second
)

// recoveryFillCount is the count every filled address has.
const recoveryFillCount = 1000

// RecoveryResult holds the figures of the recovery bench.
type RecoveryResult struct {
	// Addresses is the number of addresses written to the table.
	Addresses int
	// Fill is the writing of their table records (one transaction).
	Fill Rate
	// RawBefore and RawAfter are plain read_committed reads of the whole
	// table topic with a sarama consumer, before the cold rebuild and
	// after the restart: the baseline of the rebuild rate.
	RawBefore, RawAfter Rate
	// Fetch is a read of the same topic with recovery's reader
	// (kafkaread.ReadCommitted, one goroutine per partition on one
	// client) that keeps nothing: recovery without the store.
	Fetch Rate
	// Cold is the start of an instance with an empty local store, which
	// rebuilds the state from the changelog; Warm its restart on the
	// store it built.
	Cold, Warm Start
	// Instances are the throughput runs with 1, 2 and 3 instances.
	Instances []InstancesRun
	// Kill and Bounce are the pause runs: one instance of three killed
	// with SIGKILL; one killed with SIGKILL and started again at once.
	Kill, Bounce *PauseRun
}

// Rate is a number of records handled in a time.
type Rate struct {
	Records int
	Took    time.Duration
	// LoadBefore and LoadAfter are the machine's 1-minute load average.
	LoadBefore, LoadAfter float64
}

// PerSecond returns records/s.
func (r Rate) PerSecond() float64 { return perSecond(int64(r.Records), r.Took) }

// perSecond returns n over d in units per second, 0 for no time.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Start is the start of an instance on a local store.
type Start struct {
	// Ready is the time from processor.Run to Stats().Ready (every
	// partition recovered); Serving the time from Run to the moment the
	// output of a record written before the start, one for each
	// partition, was read (read_committed): the instance serves again.
	Ready, Serving time.Duration
	// Records is the number of changelog records recovery read
	// (Metrics.RecoveryRecords); Recovered the time from Run to the last
	// partition's recovery.
	Records   int64
	Recovered time.Duration
	// StoreBytes is the size of the local stores on disk once the
	// instance has stopped.
	StoreBytes int64
	// LoadBefore and LoadAfter are the machine's 1-minute load average.
	LoadBefore, LoadAfter float64
}

// RebuildPerSecond is the rebuild rate: records read by recovery over the
// time from Run to the last partition's recovery (it includes joining the
// group).
func (s Start) RebuildPerSecond() float64 { return perSecond(s.Records, s.Recovered) }

// InstancesRun is the throughput of a number of instances.
type InstancesRun struct {
	Instances int
	Phase     Rate
	Checks    []string
}

// PauseRun is a paced load through three instances while one is killed.
type PauseRun struct {
	// Label says what was done.
	Label string
	// Steady is the longest gap between two output records of one
	// partition before the kill: the baseline.
	Steady time.Duration
	// Pause is the longest gap between two output records of one
	// partition from the kill on, and Partition that partition.
	Pause     time.Duration
	Partition int32
	// PausedOver1s is the number of partitions whose longest gap from the
	// kill on was over a second.
	PausedOver1s int
	// Restart is the time from the restart to the restarted instance's
	// "ready" (Bounce only).
	Restart time.Duration
	// MaxLatency is the longest latency of a paced record (its send to
	// its output read).
	MaxLatency            time.Duration
	Records               int
	LoadBefore, LoadAfter float64
	Checks                []string
}

// recoveryClock is the processor.Metrics of the recovery bench: the
// commit times, and the records recovery read and when.
type recoveryClock struct {
	commitClock
	records atomic.Int64
	last    atomic.Int64 // Unix ns of the last RecoveryRecords
}

func (c *recoveryClock) RecoveryRecords(n int64) {
	c.records.Add(n)
	c.last.Store(time.Now().UnixNano())
}

// runRecovery runs the recovery bench.
func (b *bench) runRecovery(ctx context.Context) (*RecoveryResult, error) {
	res := &RecoveryResult{Addresses: b.cfg.RecoveryAddresses}
	if err := b.restarts(ctx, res); err != nil {
		return nil, err
	}
	for k := 1; k <= 3; k++ {
		run, err := b.instancesRun(ctx, k)
		if err != nil {
			return nil, err
		}
		res.Instances = append(res.Instances, run)
	}
	var err error
	if res.Kill, err = b.pauseRun(ctx, false); err != nil {
		return nil, err
	}
	if res.Bounce, err = b.pauseRun(ctx, true); err != nil {
		return nil, err
	}
	return res, nil
}

// restarts fills the table of the counter application with
// RecoveryAddresses addresses and measures a cold rebuild, a restart on
// the local store, and raw reads of the table around them.
func (b *bench) restarts(ctx context.Context, res *RecoveryResult) error {
	cfg := b.cfg
	app := "bench-" + b.runID + "-recovery"
	in, out := app+"-in", app+"-out"
	topo, reg := CounterApp(app, in, out, cfg.Partitions, 0)
	table := string(topo.TableTopic(CounterType))
	dataDir, err := os.MkdirTemp("", "stateloop-bench-recovery-")
	if err != nil {
		return fmt.Errorf("bench: recovery: data directory: %w", err)
	}
	defer os.RemoveAll(dataDir)
	if err := createTopics(b.client, cfg.Partitions, in, out); err != nil {
		return err
	}
	rd, err := newRecoveryReader(b, out)
	if err != nil {
		return err
	}
	defer rd.close()

	// a first instance creates the topics and handles a warm-up; its
	// store is thrown away
	fmt.Fprintf(b.out, "recovery: starting an instance to create the topics\n")
	first, err := b.startInProcess(ctx, topo, reg, filepath.Join(dataDir, "first"))
	if err != nil {
		return err
	}
	probes := probeIDs(cfg.Partitions)
	if err := b.probe(ctx, rd, in, probes, 1, "warm-up"); err != nil {
		first.stop()
		return err
	}
	if err := first.stop(); err != nil {
		return err
	}

	// the table records, written directly: one transaction of
	// RecoveryAddresses records, each the state record the counter
	// writes for the count recoveryFillCount
	n := cfg.RecoveryAddresses
	value, err := counterState(recoveryFillCount)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "recovery: writing %s table records to %s\n", num(n), table)
	res.Fill.LoadBefore = loadAverage()
	start := time.Now()
	if _, err := b.loadRecords(ctx, table, n, func(i int) (string, []byte) { return idKey(i, n), value }, "recovery-fill", nil); err != nil {
		return err
	}
	res.Fill.Records, res.Fill.Took, res.Fill.LoadAfter = n, time.Since(start), loadAverage()
	// the probe ids' next count: recoveryFillCount + 1 if they are among
	// the filled ids, else 2 (after the warm-up's 1)
	next := func(id string) int64 {
		var k int
		if _, err := fmt.Sscanf(id, "id-%d", &k); err == nil && k < n {
			return recoveryFillCount + 1
		}
		return 2
	}

	if res.RawBefore, err = b.rawRead(ctx, table); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "recovery: raw read of %s: %s records/s\n", table, num(int(res.RawBefore.PerSecond())))
	if res.Fetch, err = b.fetchRead(ctx, table); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "recovery: recovery's reader alone on %s: %s records/s\n", table, num(int(res.Fetch.PerSecond())))

	cold := filepath.Join(dataDir, "cold")
	if res.Cold, err = b.timedStart(ctx, rd, topo, reg, cold, in, probes, next, "cold rebuild", true); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "recovery: cold rebuild: %s records in %v (%s records/s), serving after %v\n",
		num(int(res.Cold.Records)), res.Cold.Recovered.Round(time.Millisecond), num(int(res.Cold.RebuildPerSecond())), res.Cold.Serving.Round(time.Millisecond))
	after := func(id string) int64 { return next(id) + 1 }
	if res.Warm, err = b.timedStart(ctx, rd, topo, reg, cold, in, probes, after, "restart on the local store", false); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "recovery: restart on the local store: %s records read, serving after %v\n",
		num(int(res.Warm.Records)), res.Warm.Serving.Round(time.Millisecond))
	if res.RawAfter, err = b.rawRead(ctx, table); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "recovery: raw read of %s: %s records/s\n\n", table, num(int(res.RawAfter.PerSecond())))
	return nil
}

// counterState returns the table record of a counter whose count is n.
func counterState(n int64) ([]byte, error) {
	v, err := functions.LongType.Codec().Encode(n)
	if err != nil {
		return nil, err
	}
	rec := wire.StateRecord{countState.Name(): driver.StoredValue{TypeName: functions.LongType.Name(), Value: v}}
	return wire.AppendStateRecord(nil, rec, rec.Names()), nil
}

// probeIDs returns one id of the bench's id-<n> form for each partition.
func probeIDs(partitions int32) []string {
	var ids []string
	seen := make(map[int32]bool)
	for i := 0; len(seen) < int(partitions); i++ {
		id := idKey(i, i+1)
		if p := processor.PartitionFor(id, partitions); !seen[p] {
			seen[p] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// timedStart starts an instance on the local store in dir, after writing
// one record for each probe id, and measures the time until it is ready
// and until every probe's output is read; each probe's count must be
// want(id). It stops the instance again.
func (b *bench) timedStart(ctx context.Context, rd *recoveryReader, topo topology.Topology, reg *functions.Registry, dir, in string, probes []string, want func(string) int64, label string, profile bool) (Start, error) {
	var st Start
	wait := rd.expectProbes(probes, want)
	if err := b.writeProbes(ctx, in, probes, label); err != nil {
		return st, err
	}
	st.LoadBefore = loadAverage()
	fmt.Fprintf(b.out, "recovery: %s: starting\n", label)
	stopProfile, err := b.profileRebuild(profile)
	if err != nil {
		return st, err
	}
	defer stopProfile()
	inst, err := b.startInProcess(ctx, topo, reg, dir)
	if err != nil {
		return st, err
	}
	st.Ready = inst.ready
	if err := wait(ctx, 5*time.Minute); err != nil {
		inst.stop()
		return st, fmt.Errorf("bench: recovery: %s: %w", label, err)
	}
	st.Serving = rd.lastProbe().Sub(inst.started)
	stopProfile()
	st.Records = inst.clock.records.Load()
	st.Recovered = time.Unix(0, inst.clock.last.Load()).Sub(inst.started)
	st.LoadAfter = loadAverage()
	err = inst.stop()
	st.StoreBytes = dirSize(dir)
	return st, err
}

// profileRebuild starts a CPU profile into Config.CPUProfile if on and
// one is asked for, and returns the function that ends it (once).
func (b *bench) profileRebuild(on bool) (func(), error) {
	if !on || b.cfg.CPUProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(b.cfg.CPUProfile)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
			fmt.Fprintf(b.out, "recovery: CPU profile of the cold rebuild written to %s\n", b.cfg.CPUProfile)
		})
	}, nil
}

// inProcess is a processor running in this process.
type inProcess struct {
	p       *processor.Processor
	clock   *recoveryClock
	started time.Time
	ready   time.Duration
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
}

// startInProcess starts the counter application in this process with its
// local stores in dir and waits until it is ready.
func (b *bench) startInProcess(ctx context.Context, topo topology.Topology, reg *functions.Registry, dir string) (*inProcess, error) {
	cfg := b.cfg
	clock := &recoveryClock{}
	p, err := processor.New(b.brokers, topo, reg,
		processor.WithCommitInterval(cfg.CommitInterval), processor.WithCommitCount(cfg.CommitCount),
		processor.WithLogger(cfg.Logger), processor.WithMetrics(clock), processor.WithDataDir(dir))
	if err != nil {
		return nil, fmt.Errorf("bench: recovery: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ip := &inProcess{p: p, clock: clock, cancel: cancel, done: make(chan struct{}), started: time.Now()}
	go func() {
		defer close(ip.done)
		ip.err = p.Run(runCtx)
	}()
	deadline := time.After(5 * time.Minute)
	for !p.Stats().Ready {
		select {
		case <-ip.done:
			return nil, fmt.Errorf("bench: recovery: the processor stopped before it was ready: %w", ip.err)
		case <-deadline:
			ip.stop()
			return nil, errors.New("bench: recovery: the processor was not ready after 5 minutes")
		case <-ctx.Done():
			ip.stop()
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	ip.ready = time.Since(ip.started)
	return ip, nil
}

func (ip *inProcess) stop() error {
	ip.cancel()
	<-ip.done
	if ip.err != nil {
		return fmt.Errorf("bench: recovery: %w", ip.err)
	}
	return nil
}

// probe writes one record for each id and waits for their outputs, whose
// counts must be count.
func (b *bench) probe(ctx context.Context, rd *recoveryReader, in string, ids []string, count int64, label string) error {
	wait := rd.expectProbes(ids, func(string) int64 { return count })
	if err := b.writeProbes(ctx, in, ids, label); err != nil {
		return err
	}
	if err := wait(ctx, 2*time.Minute); err != nil {
		return fmt.Errorf("bench: recovery: %s: %w", label, err)
	}
	return nil
}

// writeProbes writes one record for each id in one transaction.
func (b *bench) writeProbes(ctx context.Context, in string, ids []string, label string) error {
	_, err := b.loadRecords(ctx, in, len(ids), func(i int) (string, []byte) {
		return ids[i], inputValue(phaseWarmup, uint64(i), time.Now().UnixNano())
	}, "probe-"+randomID(), nil)
	if err != nil {
		return fmt.Errorf("bench: recovery: %s: %w", label, err)
	}
	return nil
}

// rawRead reads every partition of topic from its start to its last
// stable offset with a read_committed sarama consumer, one goroutine per
// partition, and counts the records.
func (b *bench) rawRead(ctx context.Context, topic string) (Rate, error) {
	r := Rate{LoadBefore: loadAverage()}
	cc := clientConfig()
	client, err := sarama.NewClient(b.brokers, cc)
	if err != nil {
		return r, fmt.Errorf("bench: raw read: %w", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return r, fmt.Errorf("bench: raw read: %w", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return r, fmt.Errorf("bench: raw read: %w", err)
	}
	ends := make([]int64, len(parts))
	for i, p := range parts {
		// a partition's last record is a transaction marker (every
		// writer is transactional), so its last data record is at lso-2
		_, _, lso, err := kafkaread.Ends(client, topic, p)
		if err != nil {
			return r, fmt.Errorf("bench: raw read: ends of %s/%d: %w", topic, p, err)
		}
		ends[i] = lso - 2
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	start := time.Now()
	for i, p := range parts {
		if ends[i] < 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return r, fmt.Errorf("bench: raw read: %w", err)
		}
		wg.Go(func() {
			defer pc.AsyncClose()
			var n int64
			defer func() { total.Add(n) }()
			timeout := time.NewTimer(2 * time.Minute)
			defer timeout.Stop()
			for {
				select {
				case m := <-pc.Messages():
					n++
					if m.Offset >= ends[i] {
						return
					}
				case e := <-pc.Errors():
					errs <- e
					return
				case <-timeout.C:
					errs <- fmt.Errorf("bench: raw read of %s/%d did not reach offset %d in 2 minutes", topic, p, ends[i])
					return
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
		})
	}
	wg.Wait()
	r.Took = time.Since(start)
	r.Records = int(total.Load())
	r.LoadAfter = loadAverage()
	close(errs)
	for e := range errs {
		return r, e
	}
	return r, nil
}

// fetchRead reads every partition of topic from its start to its last
// stable offset with kafkaread.ReadCommitted, the reader recovery uses,
// one goroutine per partition on one client as a stream thread does, and
// counts the records: recovery without the store.
func (b *bench) fetchRead(ctx context.Context, topic string) (Rate, error) {
	r := Rate{LoadBefore: loadAverage()}
	client, err := sarama.NewClient(b.brokers, clientConfig())
	if err != nil {
		return r, fmt.Errorf("bench: fetch read: %w", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return r, fmt.Errorf("bench: fetch read: %w", err)
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	start := time.Now()
	for _, p := range parts {
		wg.Go(func() {
			from, _, lso, err := kafkaread.Ends(client, topic, p)
			if err == nil {
				var n int64
				_, err = kafkaread.ReadCommitted(ctx, client, topic, p, from, lso, func(kafkaread.Record) error { n++; return nil })
				total.Add(n)
			}
			if err != nil {
				errs <- fmt.Errorf("bench: fetch read of %s/%d: %w", topic, p, err)
			}
		})
	}
	wg.Wait()
	r.Took = time.Since(start)
	r.Records = int(total.Load())
	r.LoadAfter = loadAverage()
	close(errs)
	for e := range errs {
		return r, e
	}
	return r, nil
}

// recoveryReader reads the output of the restarts and checks the probes'
// counts.
type recoveryReader struct {
	topicReader
	mu     sync.Mutex
	want   map[string]int64 // probe id -> count, while waiting
	wrong  []string
	done   chan struct{}
	lastAt time.Time
}

func newRecoveryReader(b *bench, topic string) (*recoveryReader, error) {
	r := &recoveryReader{}
	if err := r.start(b.client, topic, r.handle); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *recoveryReader) handle(m *sarama.ConsumerMessage, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := string(m.Key)
	want, ok := r.want[id]
	if !ok || len(m.Value) != outputLen {
		r.wrong = append(r.wrong, fmt.Sprintf("unexpected output record %s/%d@%d of %q", m.Topic, m.Partition, m.Offset, id))
		return
	}
	if got := int64(binary.BigEndian.Uint64(m.Value[inputLen:])); got != want {
		r.wrong = append(r.wrong, fmt.Sprintf("%s: count %d, want %d (the state was not recovered)", id, got, want))
	}
	delete(r.want, id)
	r.lastAt = now
	if len(r.want) == 0 && r.done != nil {
		close(r.done)
		r.done = nil
	}
}

// expectProbes announces one record for each id, whose output's count
// must be want(id), and returns the function that waits for them.
func (r *recoveryReader) expectProbes(ids []string, want func(string) int64) func(context.Context, time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.want = make(map[string]int64, len(ids))
	for _, id := range ids {
		r.want[id] = want(id)
	}
	done := make(chan struct{})
	r.done = done
	return func(ctx context.Context, limit time.Duration) error {
		select {
		case <-done:
		case <-time.After(limit):
			return fmt.Errorf("the outputs of the probes were not read within %v", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.wrong) > 0 {
			return errors.New(r.wrong[0])
		}
		for _, e := range r.readErrors() {
			return e
		}
		return nil
	}
}

func (r *recoveryReader) lastProbe() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastAt
}

// instancesRun measures the throughput of k instances (child processes)
// of the counter application: Messages records pre-loaded in one
// transaction.
func (b *bench) instancesRun(ctx context.Context, k int) (InstancesRun, error) {
	cfg := b.cfg
	run := InstancesRun{Instances: k}
	app := fmt.Sprintf("bench-%s-inst%d", b.runID, k)
	g, err := b.startGroup(ctx, app, k, false)
	if err != nil {
		return run, err
	}
	defer g.close()
	fmt.Fprintf(b.out, "recovery: %d instance(s): %s records\n", k, num(cfg.Messages))
	g.rd.expect(phaseLoad, cfg.Messages)
	g.rd.expect(phasePaced, 0)
	run.Phase.LoadBefore = loadAverage()
	start, err := b.load(ctx, g.in, phaseLoad, cfg.Messages, "load")
	if err != nil {
		return run, err
	}
	done, _ := g.rd.phaseDone(phaseLoad)
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		return run, fmt.Errorf("bench: %d instances: %d of %d outputs after 10 minutes", k, g.rd.count(phaseLoad), cfg.Messages)
	case <-ctx.Done():
		return run, ctx.Err()
	}
	run.Phase.Records = cfg.Messages
	run.Phase.Took = g.rd.doneAt(phaseLoad).Sub(start)
	run.Phase.LoadAfter = loadAverage()
	fmt.Fprintf(b.out, "recovery: %d instance(s): %s messages/s\n", k, num(int(run.Phase.PerSecond())))
	run.Checks, err = g.finish(fmt.Sprintf("%d instances", k), cfg.Warmup+cfg.Messages)
	return run, err
}

// group is a number of child instances of one counter application and
// the reader of its output.
type group struct {
	b         *bench
	app       string
	in, out   string
	dir       string
	instances []*instance
	rd        *reader
	closed    bool
}

// startGroup starts k instances of a new counter application (with local
// stores on disk if withStores), waits until they are ready and runs the
// warm-up through them.
func (b *bench) startGroup(ctx context.Context, app string, k int, withStores bool) (*group, error) {
	cfg := b.cfg
	g := &group{b: b, app: app, in: app + "-in", out: app + "-out"}
	if err := createTopics(b.client, cfg.Partitions, g.in, g.out); err != nil {
		return nil, err
	}
	if withStores {
		dir, err := os.MkdirTemp("", "stateloop-bench-instances-")
		if err != nil {
			return nil, fmt.Errorf("bench: data directory: %w", err)
		}
		g.dir = dir
	}
	rd, err := newReader(b.client, g.out, true)
	if err != nil {
		g.close()
		return nil, err
	}
	g.rd = rd
	for i := range k {
		inst, err := startInstance(g.spec(i))
		if err != nil {
			g.close()
			return nil, err
		}
		g.instances = append(g.instances, inst)
	}
	for _, inst := range g.instances {
		if _, err := inst.waitReady(ctx, 2*time.Minute); err != nil {
			g.close()
			return nil, err
		}
	}
	rd.expect(phaseWarmup, cfg.Warmup)
	if _, err := b.load(ctx, g.in, phaseWarmup, cfg.Warmup, "warmup"); err != nil {
		g.close()
		return nil, err
	}
	done, _ := rd.phaseDone(phaseWarmup)
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		g.close()
		return nil, fmt.Errorf("bench: %s: the warm-up's outputs were not read within 2 minutes", app)
	case <-ctx.Done():
		g.close()
		return nil, ctx.Err()
	}
	return g, nil
}

// spec returns the spec of the group's i-th instance.
func (g *group) spec(i int) instanceSpec {
	cfg := g.b.cfg
	s := instanceSpec{Brokers: g.b.brokers, App: g.app, In: g.in, Out: g.out, Partitions: cfg.Partitions,
		InstanceID: fmt.Sprintf("%s-i%d", g.app, i), CommitInterval: cfg.CommitInterval, CommitCount: cfg.CommitCount,
		SessionTimeout: cfg.SessionTimeout, TxnTimeout: cfg.TransactionTimeout, LogLevel: slog.LevelWarn}
	if h, ok := cfg.Logger.Handler().(interface{ Level() slog.Level }); ok {
		s.LogLevel = h.Level()
	}
	if g.dir != "" {
		s.DataDir = filepath.Join(g.dir, fmt.Sprint(i))
	}
	return s
}

// finish stops the instances, waits until the output is quiet and checks
// it: one output record for each of inputs, counts exact.
func (g *group) finish(label string, inputs int) ([]string, error) {
	var errs []error
	for _, inst := range g.instances {
		if err := inst.stop(time.Minute); err != nil {
			errs = append(errs, err)
		}
	}
	g.rd.quiet(500*time.Millisecond, 10*time.Second)
	checks, err := g.rd.verify(label, inputs)
	errs = append(errs, err)
	return checks, errors.Join(errs...)
}

// close kills what is still running and removes the data directory.
func (g *group) close() {
	if g.closed {
		return
	}
	g.closed = true
	for _, inst := range g.instances {
		_ = inst.stop(10 * time.Second)
	}
	if g.rd != nil {
		g.rd.close()
	}
	if g.dir != "" {
		os.RemoveAll(g.dir)
	}
}

// pauseRun runs a paced load through three instances with local stores,
// kills one with SIGKILL after a steady stretch and, if bounce, starts it
// again at once with the same instance id and store; it measures the
// longest gap between two outputs of any partition.
func (b *bench) pauseRun(ctx context.Context, bounce bool) (*PauseRun, error) {
	cfg := b.cfg
	label := "one instance of three killed (SIGKILL), not restarted"
	name := "kill"
	if bounce {
		label = "one instance of three killed (SIGKILL) and started again at once"
		name = "bounce"
	}
	run := &PauseRun{Label: label}
	app := fmt.Sprintf("bench-%s-%s", b.runID, name)
	g, err := b.startGroup(ctx, app, 3, true)
	if err != nil {
		return nil, err
	}
	defer g.close()
	arrivals := newArrivals(cfg.Partitions)
	g.rd.mu.Lock()
	g.rd.arrived = arrivals.add
	g.rd.mu.Unlock()

	steady := cfg.RecoverySteady
	after := cfg.RecoveryAfter
	n := int(float64(cfg.Rate) * (steady + after).Seconds())
	run.Records = n
	g.rd.expect(phaseLoad, 0)
	g.rd.expect(phasePaced, n)
	run.LoadBefore = loadAverage()
	fmt.Fprintf(b.out, "recovery: %s: %s records/s for %v, the kill after %v\n", label, num(cfg.Rate), steady+after, steady)
	pc, err := b.startPaced(ctx, g.in, n)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(steady):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	victim := g.instances[2]
	killAt := time.Now()
	victim.kill()
	if bounce {
		inst, err := startInstance(victim.spec)
		if err != nil {
			return nil, err
		}
		g.instances[2] = inst
		if run.Restart, err = inst.waitReady(ctx, 2*time.Minute); err != nil {
			return nil, err
		}
	}
	if err := pc.wait(); err != nil {
		return nil, err
	}
	done, _ := g.rd.phaseDone(phasePaced)
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("bench: %s: %d of %d outputs after 5 minutes", label, g.rd.count(phasePaced), n)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	run.LoadAfter = loadAverage()
	_, _, run.MaxLatency = g.rd.latencies(phasePaced)
	// the steady stretch without its first second (the load starting)
	run.Steady, _ = arrivals.longestGap(killAt.Add(-steady+time.Second), killAt)
	pauses := arrivals.gaps(killAt.Add(-time.Second), g.rd.doneAt(phasePaced))
	for p, d := range pauses {
		if d > run.Pause {
			run.Pause, run.Partition = d, int32(p)
		}
		if d > time.Second {
			run.PausedOver1s++
		}
	}
	fmt.Fprintf(b.out, "recovery: %s: longest pause of a partition %v (steady: %v)\n", label, run.Pause.Round(time.Millisecond), run.Steady.Round(time.Millisecond))
	run.Checks, err = g.finish(label, cfg.Warmup+n)
	return run, err
}

// arrivals are the times output records of each partition were read.
type arrivals struct {
	partitions int32
	mu         sync.Mutex
	at         [][]time.Time
}

func newArrivals(partitions int32) *arrivals {
	return &arrivals{partitions: partitions, at: make([][]time.Time, partitions)}
}

func (a *arrivals) add(key []byte, now time.Time) {
	p := processor.PartitionFor(string(key), a.partitions)
	a.mu.Lock()
	a.at[p] = append(a.at[p], now)
	a.mu.Unlock()
}

// gaps returns, for each partition, the longest time between two records
// read in [from, to], or between from and the first, or the last and to
// when there is none in between: a partition with no record in the
// window paused for all of it.
func (a *arrivals) gaps(from, to time.Time) []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]time.Duration, a.partitions)
	for p, ts := range a.at {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		prev := from
		// start at the last record before from
		for _, t := range ts {
			if t.Before(from) {
				prev = t
			}
		}
		for _, t := range ts {
			if t.Before(from) {
				continue
			}
			if t.After(to) {
				break
			}
			out[p] = max(out[p], t.Sub(prev))
			prev = t
		}
		out[p] = max(out[p], to.Sub(prev))
	}
	return out
}

// longestGap returns the longest gap of gaps(from, to) and its partition.
func (a *arrivals) longestGap(from, to time.Time) (time.Duration, int32) {
	var longest time.Duration
	var part int32
	for p, d := range a.gaps(from, to) {
		if d > longest {
			longest, part = d, int32(p)
		}
	}
	return longest, part
}
