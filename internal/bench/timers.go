package bench

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/processor"
)

// The delayed-messages bench (Config.Timers, stateloop-bench --timers)
// runs the application of timers_app.go in one processor with a local
// store on disk (a temporary data directory), and measures:
//
//   - stored timers: TimersStored delayed messages due in one to two
//     hours, scheduled in two halves; after each half, the heap in use
//     (runtime.MemStats after runtime.GC) and the size of the local stores
//     on disk. They stay in the store (the processor holds only the next
//     minute in memory), so this is the memory a pending timer costs when
//     it is not due soon. They never fire during the bench: the bench
//     checks that the timers topic holds exactly one committed record for
//     each of them and that none arrived.
//   - burst: TimersBurst delayed messages all due at one moment a few
//     seconds ahead, so they sit in the in-memory heap: the same memory
//     figures, then the firing rate, from the due time to the last
//     message's egress record read with read_committed.
//   - the same number of plain messages through the same function, as
//     baselines: pre-loaded in one transaction to an ingress topic that
//     routes them straight to the sink, and to the scheduler, which sends
//     each with ctx.Send (a hop through the loop topic, as a fired timer's
//     message takes).
//   - paced: TimersRate delayed messages/s for TimersDuration with random
//     delays up to TimersMaxDelay; lateness = arrival of the egress record
//     (read_committed) minus the due time, and the sink's invocation
//     minus the due time.
//
// Every message must arrive exactly once and none before its due time, or
// the run fails.

// Profile targets of the delayed-messages bench (Config.ProfileSide).
const (
	// ProfileFire profiles the burst from its due time to its last message.
	ProfileFire = "fire"
	// ProfileSchedule profiles the scheduling of the stored timers.
	ProfileSchedule = "schedule"
	// ProfilePaced profiles the paced phase.
	ProfilePaced = "paced"
)

// Delays of the stored timers: long enough never to fire during a bench.
const (
	storedMinDelay = time.Hour
	storedMaxDelay = 2 * time.Hour
)

// warm-up delays of the delayed-messages bench
const warmupMaxDelay = 50 * time.Millisecond

// longDelayFactor times the commit interval is the delay from which the
// lateness of a message is also reported apart: its timer has surely been
// committed, and put in memory, before it is due. A message with a
// shorter delay can be due before the transaction that scheduled it
// commits; it is then sent late by the rest of that transaction.
const longDelayFactor = 2

// TimersResult holds the figures of the delayed-messages bench.
type TimersResult struct {
	// Stored and Burst are the memory and disk figures of timers that
	// stay in the store and of timers held in memory.
	Stored, Burst Memory
	// Fire is the burst's firing: Elapsed runs from the due time to the
	// last egress record read; PerSecond is timers fired per second.
	Fire Phase
	// FirstAfter is the time from the due time to the burst's first
	// egress record; FireLateness the lateness of the burst's messages.
	FirstAfter   time.Duration
	FireLateness Lateness
	// Lead is how long before the due time the last burst timer was
	// scheduled and the memory was measured.
	Lead time.Duration
	// Retained is the heap after the burst has fired.
	Retained Heap
	// TimersFired is the processor's count of timers fired in the burst.
	TimersFired int64
	// Plain and Send are the baselines: plain messages through the same
	// sink, from the ingress and with ctx.Send.
	Plain, Send Phase
	// FireRatio is fired timers/s over plain (ingress) messages/s;
	// FireSendRatio over plain (ctx.Send) messages/s.
	FireRatio, FireSendRatio float64
	// Paced is the paced phase and Lateness the lateness of its messages.
	Paced    Phase
	Lateness Lateness
	// Checks are the correctness checks that passed, as sentences.
	Checks []string
}

// Memory is what a number of pending timers cost.
type Memory struct {
	Timers int
	// Before, Half and After are heap readings before the first timer,
	// after half of them and after all were scheduled.
	Before, Half, After Heap
	// DiskBefore, DiskHalf and DiskAfter are the bytes of the local
	// stores' files at the same moments.
	DiskBefore, DiskHalf, DiskAfter int64
	// Schedule is the scheduling of the timers (both halves): Elapsed
	// from each load's commit to the commit of its last request.
	Schedule Phase
}

// Heap is a reading of runtime.MemStats after runtime.GC.
type Heap struct {
	Inuse, Alloc uint64
}

// PerTimer returns heap in use per timer, over all timers and between
// the halves (the marginal cost, without fixed buffers such as leveldb's
// memtables).
func (m Memory) PerTimer() (all, marginal float64) {
	if m.Timers == 0 {
		return 0, 0
	}
	all = (float64(m.After.Inuse) - float64(m.Before.Inuse)) / float64(m.Timers)
	if n := m.Timers - m.Timers/2; n > 0 {
		marginal = (float64(m.After.Inuse) - float64(m.Half.Inuse)) / float64(n)
	}
	return all, marginal
}

// AllocPerTimer is PerTimer for the live heap (HeapAlloc).
func (m Memory) AllocPerTimer() (all, marginal float64) {
	if m.Timers == 0 {
		return 0, 0
	}
	all = (float64(m.After.Alloc) - float64(m.Before.Alloc)) / float64(m.Timers)
	if n := m.Timers - m.Timers/2; n > 0 {
		marginal = (float64(m.After.Alloc) - float64(m.Half.Alloc)) / float64(n)
	}
	return all, marginal
}

// DiskPerTimer returns bytes of local store per timer.
func (m Memory) DiskPerTimer() float64 {
	if m.Timers == 0 || m.DiskAfter < 0 || m.DiskBefore < 0 {
		return -1
	}
	return float64(m.DiskAfter-m.DiskBefore) / float64(m.Timers)
}

// perGiB returns how many timers fit in a GiB at bytes per timer; -1 if
// the cost is not positive.
func perGiB(bytes float64) float64 {
	if bytes <= 0 {
		return -1
	}
	return float64(1<<30) / bytes
}

func readHeap() Heap {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Heap{Inuse: ms.HeapInuse, Alloc: ms.HeapAlloc}
}

// dirSize returns the bytes of the files under dir, -1 if it cannot be
// read.
func dirSize(dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // leveldb removes files as it compacts
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return total
}

// timersRun is one run of the delayed-messages bench.
type timersRun struct {
	b       *bench
	app     *timerApp
	side    *runtimeSide
	rd      *timerReader
	in      string
	plain   string
	store   string       // the local stores' directory
	sentIn  int64        // requests written to in so far
	commIn  atomic.Int64 // requests of in committed by the processor
	profile *os.File
}

// runTimers runs the delayed-messages bench.
func (b *bench) runTimers(ctx context.Context) (*TimersResult, error) {
	cfg := b.cfg
	name := "bench-" + b.runID + "-timers"
	in, plain, out := name+"-in", name+"-plain", name+"-out"
	if err := createTopics(b.client, cfg.Partitions, in, plain, out); err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "stateloop-bench-timers-")
	if err != nil {
		return nil, fmt.Errorf("bench: timers: data directory: %w", err)
	}
	defer os.RemoveAll(dataDir)
	r := &timersRun{b: b, app: newTimerApp(name, in, plain, out, cfg.Partitions), in: in, plain: plain,
		store: filepath.Join(dataDir, "state", name)}
	if skew := cfg.timersSinkSkew; skew != 0 {
		r.app.sinkNow = func() time.Time { return time.Now().Add(-skew) }
	}
	faults := &processor.Faults{Committed: func(refs []processor.RecordRef) {
		for _, ref := range refs {
			if ref.Topic == in {
				r.commIn.Add(1)
			}
		}
	}}
	r.side = &runtimeSide{b: b, label: "timers", threads: 1, topo: r.app.topo, reg: r.app.reg, fail: make(chan error, 1),
		opts: []processor.Option{processor.WithDataDir(dataDir), processor.WithFaults(faults)}}
	rd, err := newTimerReader(b.client, out, longDelayFactor*cfg.CommitInterval)
	if err != nil {
		return nil, err
	}
	defer rd.close()
	r.rd = rd
	// every expectation first, so the reader's memory is in every reading
	paced := int(float64(cfg.TimersRate) * cfg.TimersDuration.Seconds())
	paced = max(paced, 1)
	rd.expect(tphWarmup, 2*cfg.Warmup, false)
	rd.expect(tphStored, 0, false)
	rd.expect(tphBurst, cfg.TimersBurst, true)
	rd.expect(tphPlain, cfg.TimersBurst, false)
	rd.expect(tphSend, cfg.TimersBurst, false)
	rd.expect(tphPaced, paced, true)

	fmt.Fprintf(b.out, "timers: starting (local store in %s)\n", dataDir)
	if err := r.side.start(ctx); err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = r.side.stop()
		}
	}()
	res := &TimersResult{}

	// warm-up: delayed messages with short delays and plain messages
	w := cfg.Warmup
	if _, err := r.loadRange(ctx, tphWarmup, 0, w, func(int) int64 { return rand.Int64N(warmupMaxDelay.Milliseconds() + 1) }, "warmup", nil); err != nil {
		return nil, err
	}
	if _, err := r.loadPlain(ctx, tphWarmup, w, w, "warmup-plain", nil); err != nil {
		return nil, err
	}
	if err := r.waitPhase(ctx, tphWarmup, "timers warm-up"); err != nil {
		return nil, err
	}

	// stored timers
	timersTopic := string(r.app.topo.TimersTopic())
	if err := b.client.RefreshMetadata(timersTopic); err != nil {
		return nil, fmt.Errorf("bench: timers: metadata of %s: %w", timersTopic, err)
	}
	ends0, err := r.timerEnds(timersTopic)
	if err != nil {
		return nil, err
	}
	storedStart := time.Now()
	fmt.Fprintf(b.out, "timers: scheduling %s timers due in %v to %v, in two halves\n", num(cfg.TimersStored), storedMinDelay, storedMaxDelay)
	span := (storedMaxDelay - storedMinDelay).Milliseconds()
	res.Stored, err = r.schedule(ctx, tphStored, cfg.TimersStored, func(int) int64 {
		return storedMinDelay.Milliseconds() + rand.Int64N(span)
	}, cfg.ProfileSide == ProfileSchedule, nil)
	if err != nil {
		return nil, err
	}
	storedTook := time.Since(storedStart)
	r.heapProfile("stored")
	ends1, err := r.timerEnds(timersTopic)
	if err != nil {
		return nil, err
	}

	// burst: due at one moment, late enough for scheduling and measuring
	nb := cfg.TimersBurst
	perTimer := storedTook.Seconds() / float64(max(cfg.TimersStored, 1))
	lead := 3*time.Second + time.Duration(2*perTimer*float64(nb)*float64(time.Second))
	var due time.Time
	fmt.Fprintf(b.out, "timers: scheduling %s timers all due at the same moment, in two halves\n", num(nb))
	res.Burst, err = r.schedule(ctx, tphBurst, nb, func(int) int64 { return delayBurst }, false, func() {
		due = time.Unix(0, ceilMillis(time.Now().Add(lead).UnixNano()))
		r.app.burstDue.Store(due.UnixNano())
	})
	if err != nil {
		return nil, err
	}
	r.heapProfile("burst")
	res.Lead = time.Until(due)
	if res.Lead <= 0 || r.rd.count(tphBurst) > 0 {
		return nil, fmt.Errorf("bench: timers: the burst's %s timers were not scheduled and measured before their due time (%v after it, lead %v); use a smaller burst", num(nb), -res.Lead, lead)
	}
	fmt.Fprintf(b.out, "timers: burst scheduled %v before its due time; waiting\n", res.Lead.Round(time.Millisecond))
	select {
	case <-time.After(time.Until(due)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fired0, commits0 := r.side.p.Stats().TimersFired, r.side.commits()
	cpu0, bcpu0 := processCPU(), childrenCPU()
	if cfg.ProfileSide == ProfileFire {
		r.startProfile()
	}
	if err := r.waitPhase(ctx, tphBurst, "timers burst"); err != nil {
		return nil, err
	}
	cpu1, bcpu1 := processCPU(), childrenCPU()
	r.stopProfile()
	first, last := rd.arrivals(tphBurst)
	res.Fire = phaseFigures(nb, last.Sub(due), cpu1-cpu0, brokerDelta(bcpu0, bcpu1), r.side.commits()-commits0, nil, nil)
	res.FirstAfter = first.Sub(due)
	res.TimersFired = r.side.p.Stats().TimersFired - fired0
	res.FireLateness = rd.lateness(tphBurst)
	res.Retained = readHeap()

	// baselines
	fmt.Fprintf(b.out, "timers: %s plain messages from the ingress to the sink, pre-loaded in one transaction\n", num(nb))
	if res.Plain, err = r.plainPhase(ctx, tphPlain, nb, func(ctx context.Context, beforeCommit func()) (time.Time, error) {
		return r.loadPlain(ctx, tphPlain, nb, 0, "plain", beforeCommit)
	}); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "timers: %s plain messages sent with ctx.Send, pre-loaded in one transaction\n", num(nb))
	if res.Send, err = r.plainPhase(ctx, tphSend, nb, func(ctx context.Context, beforeCommit func()) (time.Time, error) {
		return r.loadRange(ctx, tphSend, 0, nb, func(int) int64 { return delayNone }, "send", beforeCommit)
	}); err != nil {
		return nil, err
	}
	if res.Plain.PerSecond > 0 {
		res.FireRatio = res.Fire.PerSecond / res.Plain.PerSecond
	}
	if res.Send.PerSecond > 0 {
		res.FireSendRatio = res.Fire.PerSecond / res.Send.PerSecond
	}

	// paced
	fmt.Fprintf(b.out, "timers: %s delayed messages/s for %v, delays 0 to %v\n", num(cfg.TimersRate), cfg.TimersDuration, cfg.TimersMaxDelay)
	commits0 = r.side.commits()
	cpu0, bcpu0 = processCPU(), childrenCPU()
	p0 := time.Now()
	maxMs := cfg.TimersMaxDelay.Milliseconds()
	if cfg.ProfileSide == ProfilePaced {
		r.startProfile()
	}
	pc, err := b.startPacedWith(ctx, in, paced, cfg.TimersRate, func(i int) (string, []byte) {
		return idKey(i, cfg.IDs), timerRequest(tphPaced, uint64(i), rand.Int64N(maxMs+1))
	})
	if err != nil {
		return nil, err
	}
	err = r.waitPhase(ctx, tphPaced, "timers paced")
	cpu1, bcpu1 = processCPU(), childrenCPU()
	r.stopProfile()
	if perr := pc.wait(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	_, last = rd.arrivals(tphPaced)
	res.Paced = phaseFigures(paced, last.Sub(p0), cpu1-cpu0, brokerDelta(bcpu0, bcpu1), r.side.commits()-commits0, nil, nil)
	res.Lateness = rd.lateness(tphPaced)

	// stop, wait for strays, check
	stopped = true
	if err := r.side.stop(); err != nil {
		return nil, fmt.Errorf("bench: timers: stop: %w", err)
	}
	rd.quiet(500*time.Millisecond, 5*time.Second)
	checks, err := rd.verify()
	if err != nil {
		return nil, err
	}
	values, tombstones, err := r.countTimerRecords(ctx, timersTopic, ends0, ends1)
	if err != nil {
		return nil, err
	}
	if values != cfg.TimersStored || tombstones != 0 {
		return nil, fmt.Errorf("bench: timers: the timers topic holds %d committed timers and %d tombstones for the %d stored timers, want %d and 0",
			values, tombstones, cfg.TimersStored, cfg.TimersStored)
	}
	res.Checks = append(checks, fmt.Sprintf("the timers topic holds %s committed records for the %s stored timers, one each, no tombstone", num(values), num(cfg.TimersStored)))
	return res, nil
}

// schedule writes n requests of a phase in two halves, each in one
// transaction, waits after each until the processor has committed them,
// and reads the heap and the local stores' size before, between and
// after. beforeFirstCommit is called right before the first half becomes
// visible.
func (r *timersRun) schedule(ctx context.Context, ph byte, n int, delay func(int) int64, profile bool, beforeFirstCommit func()) (Memory, error) {
	m := Memory{Timers: n, Before: readHeap(), DiskBefore: dirSize(r.store)}
	var cpu, bcpu time.Duration
	bcpuKnown := true
	commits0 := r.side.commits()
	half := n / 2
	for i, part := range [][2]int{{0, half}, {half, n}} {
		var c0, bc0 time.Duration
		t0, err := r.loadRange(ctx, ph, part[0], part[1], delay, fmt.Sprintf("%s-%d", timerPhaseNames[ph], i), func() {
			if i == 0 && beforeFirstCommit != nil {
				beforeFirstCommit()
			}
			if profile {
				r.startProfile()
			}
			c0, bc0 = processCPU(), childrenCPU()
		})
		if err != nil {
			return m, err
		}
		if err := r.waitCommitted(ctx, &r.commIn, r.sentIn, fmt.Sprintf("timers %s (%d/2)", timerPhaseNames[ph], i+1)); err != nil {
			return m, err
		}
		m.Schedule.Elapsed += time.Since(t0)
		cpu += processCPU() - c0
		if d := brokerDelta(bc0, childrenCPU()); d >= 0 {
			bcpu += d
		} else {
			bcpuKnown = false
		}
		if profile {
			r.stopProfile()
		}
		if i == 0 {
			m.Half, m.DiskHalf = readHeap(), dirSize(r.store)
		}
	}
	m.After, m.DiskAfter = readHeap(), dirSize(r.store)
	if !bcpuKnown {
		bcpu = -1
	}
	m.Schedule = phaseFigures(n, m.Schedule.Elapsed, cpu, bcpu, r.side.commits()-commits0, nil, nil)
	return m, nil
}

// plainPhase loads n plain messages with load, which calls beforeCommit
// right before they become visible, and waits for them.
func (r *timersRun) plainPhase(ctx context.Context, ph, n int, load func(ctx context.Context, beforeCommit func()) (time.Time, error)) (Phase, error) {
	var commits0 int64
	var cpu0, bcpu0 time.Duration
	t0, err := load(ctx, func() {
		commits0 = r.side.commits()
		cpu0, bcpu0 = processCPU(), childrenCPU()
	})
	if err != nil {
		return Phase{}, err
	}
	if err := r.waitPhase(ctx, ph, "timers "+timerPhaseNames[ph]); err != nil {
		return Phase{}, err
	}
	cpu1, bcpu1 := processCPU(), childrenCPU()
	_, last := r.rd.arrivals(ph)
	return phaseFigures(n, last.Sub(t0), cpu1-cpu0, brokerDelta(bcpu0, bcpu1), r.side.commits()-commits0, nil, nil), nil
}

// loadRange writes the scheduler requests [from, to) of a phase in one
// transaction, and returns when it has committed.
func (r *timersRun) loadRange(ctx context.Context, ph byte, from, to int, delay func(int) int64, txn string, beforeCommit func()) (time.Time, error) {
	ids := r.b.cfg.IDs
	t, err := r.b.loadRecords(ctx, r.in, to-from, func(i int) (string, []byte) {
		seq := from + i
		return idKey(seq, ids), timerRequest(ph, uint64(seq), delay(seq))
	}, txn, beforeCommit)
	if err == nil {
		r.sentIn += int64(to - from)
	}
	return t, err
}

// loadPlain writes n plain messages of a phase, sequence numbers from
// first on, to the sink's ingress topic in one transaction.
func (r *timersRun) loadPlain(ctx context.Context, ph byte, n, first int, txn string, beforeCommit func()) (time.Time, error) {
	ids := r.b.cfg.IDs
	return r.b.loadRecords(ctx, r.plain, n, func(i int) (string, []byte) {
		return idKey(first+i, ids), timerMessage(ph, uint64(first+i), 0, 0)
	}, txn, beforeCommit)
}

// waitPhase waits for every message of a phase, printing progress.
func (r *timersRun) waitPhase(ctx context.Context, ph int, label string) error {
	done, expect := r.rd.phaseDone(ph)
	return r.waitFor(ctx, done, func() (int, int) { return r.rd.count(ph), expect }, label, "messages")
}

// waitCommitted waits until the processor has committed want records of
// an ingress topic.
func (r *timersRun) waitCommitted(ctx context.Context, c *atomic.Int64, want int64, label string) error {
	done := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for c.Load() < want {
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
		close(done)
	}()
	return r.waitFor(ctx, done, func() (int, int) { return int(c.Load()), int(want) }, label, "requests committed")
}

func (r *timersRun) waitFor(ctx context.Context, done <-chan struct{}, count func() (int, int), label, what string) error {
	tick := time.NewTicker(r.b.cfg.Progress)
	defer tick.Stop()
	last, lastAt := -1, time.Now()
	for {
		select {
		case <-done:
			got, want := count()
			fmt.Fprintf(r.b.out, "%s: %s/%s %s\n", label, num(got), num(want), what)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case err := <-r.side.failed():
			return fmt.Errorf("bench: %s: %w", label, err)
		case <-tick.C:
			got, want := count()
			fmt.Fprintf(r.b.out, "%s: %s/%s %s\n", label, num(got), num(want), what)
			if got != last {
				last, lastAt = got, time.Now()
			} else if time.Since(lastAt) > time.Minute {
				return fmt.Errorf("bench: %s: stalled at %d of %d %s for a minute", label, got, want, what)
			}
		}
	}
}

func (r *timersRun) startProfile() {
	path := r.b.cfg.CPUProfile
	if path == "" || r.profile != nil {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(r.b.out, "timers: no CPU profile: %v\n", err)
		return
	}
	r.profile = f
}

func (r *timersRun) stopProfile() {
	if r.profile == nil {
		return
	}
	pprof.StopCPUProfile()
	r.profile.Close()
	r.profile = nil
	fmt.Fprintf(r.b.out, "timers: CPU profile (%s) written to %s\n", r.b.cfg.ProfileSide, r.b.cfg.CPUProfile)
}

// heapProfile writes a heap profile to MemProfile.<name>, if asked for.
func (r *timersRun) heapProfile(name string) {
	if r.b.cfg.MemProfile == "" {
		return
	}
	path := r.b.cfg.MemProfile + "." + name
	f, err := os.Create(path)
	if err == nil {
		runtime.GC()
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(r.b.out, "timers: no heap profile: %v\n", err)
		return
	}
	fmt.Fprintf(r.b.out, "timers: heap profile written to %s\n", path)
}

// timerEnds returns the last stable offset of every partition of the
// timers topic.
func (r *timersRun) timerEnds(topic string) ([]int64, error) {
	parts, err := r.b.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("bench: timers: partitions of %s: %w", topic, err)
	}
	ends := make([]int64, len(parts))
	for _, p := range parts {
		_, _, lso, err := kafkaread.Ends(r.b.client, topic, p)
		if err != nil {
			return nil, fmt.Errorf("bench: timers: offsets of %s/%d: %w", topic, p, err)
		}
		ends[p] = lso
	}
	return ends, nil
}

// countTimerRecords counts the committed records of the timers topic
// between two readings of its ends: timers and tombstones.
func (r *timersRun) countTimerRecords(ctx context.Context, topic string, from, to []int64) (values, tombstones int, err error) {
	for p := range from {
		_, err := kafkaread.ReadCommitted(ctx, r.b.client, topic, int32(p), from[p], to[p], func(rec kafkaread.Record) error {
			if rec.Value == nil {
				tombstones++
			} else {
				values++
			}
			return nil
		})
		if err != nil {
			return 0, 0, fmt.Errorf("bench: timers: read %s/%d: %w", topic, p, err)
		}
	}
	return values, tombstones, nil
}

// loadRecords writes n records to topic in one transaction, building them
// chunk by chunk, and returns when the transaction has committed;
// beforeCommit, if set, is called right before the commit.
func (b *bench) loadRecords(ctx context.Context, topic string, n int, record func(i int) (key string, value []byte), txnName string, beforeCommit func()) (time.Time, error) {
	sc := saramaConfig()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Transaction.ID = "bench-" + b.runID + "-" + txnName
	sc.Producer.Transaction.Timeout = 5 * time.Minute
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Net.MaxOpenRequests = 1
	sp, err := sarama.NewSyncProducer(b.brokers, sc)
	if err != nil {
		return time.Time{}, fmt.Errorf("bench: loader: %w", err)
	}
	defer sp.Close()
	if err := sp.BeginTxn(); err != nil {
		return time.Time{}, fmt.Errorf("bench: loader: begin transaction: %w", err)
	}
	const chunk = 10_000
	msgs := make([]*sarama.ProducerMessage, 0, min(n, chunk))
	for i := 0; i < n; i += chunk {
		if err := ctx.Err(); err != nil {
			_ = sp.AbortTxn()
			return time.Time{}, err
		}
		msgs = msgs[:0]
		for j := i; j < min(i+chunk, n); j++ {
			k, v := record(j)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)})
		}
		if err := sp.SendMessages(msgs); err != nil {
			_ = sp.AbortTxn()
			return time.Time{}, fmt.Errorf("bench: loader: write %s: %w", topic, err)
		}
	}
	if beforeCommit != nil {
		beforeCommit()
	}
	if err := sp.CommitTxn(); err != nil {
		return time.Time{}, fmt.Errorf("bench: loader: commit: %w", err)
	}
	return time.Now(), nil
}
