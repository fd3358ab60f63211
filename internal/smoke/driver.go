package smoke

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/embedded"
)

// seqHeader is the header with the index of a source command.
const seqHeader = "smoke-seq"

// run is the state of one smoke run.
type run struct {
	cfg     Config
	out     io.Writer
	start   time.Time
	brokers []string
	res     Result
	workers []*worker
	exited  chan error
	// cleanupDir is a temporary data directory to remove at the end
	cleanupDir string

	mu        sync.Mutex
	phase     string
	tracker   *Tracker
	produced  int
	acked     int
	failed    int
	verified  int
	confirmed int
	lastErr   error
}

// Run runs the smoke test: it starts the workers, produces the commands
// while it kills and restarts workers, then verifies the counts of every
// id. A progress line goes to cfg.Progress, the summary to out.
//
// It returns a *[DuplicateError] when an id reports more than its expected
// count, a *[LossError] when ids have not reached it at the timeout, and
// other errors when the run cannot go on (invalid configuration, Kafka
// unreachable, a worker that fails by itself).
func Run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	r := &run{cfg: cfg, out: out, start: time.Now(), exited: make(chan error, 2*cfg.Workers), phase: "starting"}
	if r.cfg.Seed == 0 {
		r.cfg.Seed = randomSeed()
	}
	if r.cfg.App == "" {
		r.cfg.App = "smoke-" + randomHex(4)
	}
	if r.cfg.Progress == nil {
		r.cfg.Progress = io.Discard
	}
	if r.cfg.Logger == nil {
		r.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r.tracker = NewTracker(cfg.Generator.IDs)
	r.res = Result{App: r.cfg.App, Seed: r.cfg.Seed, IDs: cfg.Generator.IDs, Workers: cfg.Workers}
	if cfg.Generator.SendAfter || cfg.Generator.SendAfterWithCancellation {
		r.res.Delayed, r.res.MaxDelay = true, cfg.MaxDelay
	}
	err := r.run(ctx)
	r.res.Elapsed = time.Since(r.start)
	r.mu.Lock()
	r.res.Produced, r.res.Acked, r.res.ProduceErrors, r.res.ProduceError = r.produced, r.acked, r.failed, r.lastErr
	r.res.Increments = r.tracker.Total()
	r.res.Verified, r.res.Confirmed = r.verified, r.confirmed
	r.mu.Unlock()
	r.res.Passed = err == nil
	r.summary(err)
	return r.res, err
}

func (r *run) run(parent context.Context) error {
	cfg := &r.cfg
	// the verification keeps its own deadline: it may go on past the
	// timeout while delayed messages may still fire
	ctx, cancel := context.WithTimeout(parent, cfg.Timeout)
	defer cancel()

	r.brokers = cfg.Brokers
	if len(r.brokers) == 0 {
		sctx, scancel := context.WithTimeout(ctx, time.Minute)
		b, err := embedded.Start(sctx, embedded.Config{Listen: "127.0.0.1:0", InProcess: cfg.InProcess, Partitions: cfg.Partitions, Logger: cfg.Logger})
		scancel()
		if err != nil {
			return fmt.Errorf("smoke: start the embedded broker: %w", err)
		}
		defer b.Close()
		r.brokers = []string{b.Addr()}
		r.res.Broker = "embedded kfake at " + b.Addr()
		if cfg.SessionTimeout == 0 {
			cfg.SessionTimeout = 2 * time.Second
		}
	} else {
		r.res.Broker = "Kafka at " + strings.Join(r.brokers, ",")
		if cfg.SessionTimeout == 0 {
			cfg.SessionTimeout = 6 * time.Second
		}
	}

	client, err := sarama.NewClient(r.brokers, clientConfig())
	if err != nil {
		return fmt.Errorf("smoke: connect to Kafka at %s: %w", strings.Join(r.brokers, ","), err)
	}
	defer client.Close()
	if err := createTopics(ctx, client, cfg.Partitions, string(CommandsTopic(cfg.App)), string(DiscardTopic(cfg.App)), string(VerificationTopic(cfg.App))); err != nil {
		return err
	}
	rd, err := startReader(client, string(VerificationTopic(cfg.App)), func(msg string) { fmt.Fprintln(cfg.Progress, msg) })
	if err != nil {
		return err
	}
	defer rd.close()

	stopProgress := r.progress()
	defer stopProgress()

	defer r.stopWorkers()
	if err := r.startWorkers(ctx); err != nil {
		return err
	}

	prod, err := sarama.NewAsyncProducer(r.brokers, producerConfig())
	if err != nil {
		return fmt.Errorf("smoke: producer: %w", err)
	}
	acksDone := make(chan struct{})
	go r.acks(prod, acksDone)
	defer func() {
		prod.AsyncClose()
		<-acksDone
	}()

	r.setPhase("producing")
	t0 := time.Now()
	if err := r.produce(ctx, prod); err != nil {
		return r.interrupted(ctx, err)
	}
	r.res.ProduceTime = time.Since(t0)

	r.setPhase("verifying")
	t1 := time.Now()
	err = r.verify(parent, prod, rd, client)
	r.res.VerifyTime = time.Since(t1)
	return err
}

// interrupted explains an error that ended a phase early: the caller's
// cancellation or the run's timeout, else err itself.
func (r *run) interrupted(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) && time.Since(r.start) >= r.cfg.Timeout {
		return fmt.Errorf("smoke: timeout after %v while %s", r.cfg.Timeout, r.getPhase())
	}
	return fmt.Errorf("smoke: interrupted while %s: %w", r.getPhase(), ctx.Err())
}

func (r *run) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

func (r *run) getPhase() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phase
}

// startWorkers starts every worker and waits until all are ready.
func (r *run) startWorkers(ctx context.Context) error {
	cfg := r.cfg
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "stateloop-smoke-")
		if err != nil {
			return fmt.Errorf("smoke: data dir: %w", err)
		}
		dir = d
		r.cleanupDir = d // removed by stopWorkers
	}
	r.setPhase("starting the workers")
	for i := range cfg.Workers {
		name := "w" + strconv.Itoa(i+1)
		w := &worker{
			cfg: WorkerConfig{
				Brokers: r.brokers, App: cfg.App, Partitions: cfg.Partitions, Instance: name,
				DataDir: filepath.Join(dir, name), SessionTimeout: cfg.SessionTimeout,
				CommitInterval: cfg.CommitInterval, LogLevel: cfg.WorkerLogLevel, MaxDelay: cfg.MaxDelay,
			},
			start: cfg.StartWorker, log: cfg.WorkerLog, exited: r.exited,
		}
		if err := w.run(); err != nil {
			return err
		}
		r.workers = append(r.workers, w)
	}
	return r.waitReady(ctx)
}

// waitReady waits until every worker is ready.
func (r *run) waitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if r.readyCount() == len(r.workers) {
			return nil
		}
		select {
		case err := <-r.exited:
			return err
		case <-ctx.Done():
			return r.interrupted(ctx, ctx.Err())
		case <-t.C:
		}
	}
}

func (r *run) readyCount() int {
	n := 0
	for _, w := range r.workers {
		if w.isReady() {
			n++
		}
	}
	return n
}

// stopGrace is how long a worker may take to stop gracefully at the end
// of a run before it is killed. A worker waiting for a rebalance can take
// the whole rebalance timeout; the run's verdict does not depend on it.
const stopGrace = 5 * time.Second

// stopWorkers stops every worker (gracefully, then with SIGKILL) and
// removes a temporary data directory.
func (r *run) stopWorkers() {
	r.setPhase("stopping the workers")
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.stop(stopGrace) })
	}
	wg.Wait()
	if r.cleanupDir != "" {
		_ = os.RemoveAll(r.cleanupDir)
	}
}

// killPlan returns when (after how many produced commands) each kill
// happens: one at a random index in each of kills equal parts of
// [0, messages).
func killPlan(rng *mrand.Rand, messages, kills int) []int {
	plan := make([]int, kills)
	for k := range plan {
		lo, hi := k*messages/kills, (k+1)*messages/kills
		plan[k] = lo
		if hi > lo {
			plan[k] += rng.IntN(hi - lo)
		}
	}
	return plan
}

// produce writes the source commands at the configured rate and kills
// workers on schedule.
func (r *run) produce(ctx context.Context, prod sarama.AsyncProducer) error {
	cfg := r.cfg
	gen, err := NewGenerator(cfg.Generator, cfg.Seed)
	if err != nil {
		return err
	}
	killRng := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0xdead))
	plan := killPlan(killRng, cfg.Messages, cfg.Kills)
	topic := string(CommandsTopic(cfg.App))
	t0 := time.Now()
	for seq := 0; seq < cfg.Messages; seq++ {
		if cfg.Rate > 0 {
			due := t0.Add(time.Duration(float64(seq) / float64(cfg.Rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 2*time.Millisecond {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		select {
		case err := <-r.exited:
			return err
		default:
		}
		// a kill waits until every worker is ready again after the last
		// one, so that it hits a group at work rather than the rebalance
		// that the last kill caused
		for len(plan) > 0 && plan[0] <= seq && (cfg.KillAnytime || r.readyCount() == len(r.workers)) {
			plan = plan[1:]
			if err := r.kill(killRng, seq); err != nil {
				return err
			}
		}
		sc := gen.Next()
		if cfg.skipProduce != nil && cfg.skipProduce(seq) {
			r.mu.Lock()
			r.tracker.Track(sc)
			r.mu.Unlock()
			continue
		}
		msg := &sarama.ProducerMessage{
			Topic:    topic,
			Key:      sarama.StringEncoder(strconv.Itoa(int(sc.Target))),
			Value:    sarama.ByteEncoder(sc.Marshal()),
			Headers:  []sarama.RecordHeader{{Key: []byte(seqHeader), Value: []byte(strconv.Itoa(seq))}},
			Metadata: sc,
		}
		select {
		case prod.Input() <- msg:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
		r.produced++
		r.mu.Unlock()
	}
	// kills still due (the group took long to settle after earlier ones)
	// happen now, while the workers process the last commands
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for len(plan) > 0 {
		if cfg.KillAnytime || r.readyCount() == len(r.workers) {
			plan = plan[1:]
			if err := r.kill(killRng, cfg.Messages); err != nil {
				return err
			}
			continue
		}
		select {
		case <-t.C:
		case err := <-r.exited:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// wait for every acknowledgement: only acknowledged commands count
	for {
		r.mu.Lock()
		done := r.acked+r.failed >= r.produced
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-t.C:
		case err := <-r.exited:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// kill kills a random worker with SIGKILL and starts it again.
func (r *run) kill(rng *mrand.Rand, seq int) error {
	w := r.workers[rng.IntN(len(r.workers))]
	w.kill()
	k := Kill{Worker: w.cfg.Instance, After: seq, At: time.Since(r.start)}
	r.mu.Lock()
	r.res.Kills = append(r.res.Kills, k)
	n := len(r.res.Kills)
	r.mu.Unlock()
	fmt.Fprintf(r.cfg.Progress, "smoke: %s kill %d/%d: SIGKILL to worker %s after %s commands; restarting it\n",
		clock(k.At), n, r.cfg.Kills, k.Worker, num(seq))
	return w.run()
}

// acks counts the producer's acknowledgements and errors until it is
// closed. An acknowledged source command is tracked.
func (r *run) acks(prod sarama.AsyncProducer, done chan<- struct{}) {
	defer close(done)
	successes, errs := prod.Successes(), prod.Errors()
	for successes != nil || errs != nil {
		select {
		case m, ok := <-successes:
			if !ok {
				successes = nil
				continue
			}
			if sc, ok := m.Metadata.(SourceCommand); ok {
				r.mu.Lock()
				r.tracker.Track(sc)
				r.acked++
				r.mu.Unlock()
			}
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if _, ok := e.Msg.Metadata.(SourceCommand); ok {
				r.mu.Lock()
				r.failed++
				r.lastErr = e.Err
				r.mu.Unlock()
			}
		}
	}
}

// progress prints a progress line every ProgressInterval until the
// returned function is called.
func (r *run) progress() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(r.cfg.Progress, r.status())
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// status is one progress line.
func (r *run) status() string {
	ready := r.readyCount()
	r.mu.Lock()
	defer r.mu.Unlock()
	line := fmt.Sprintf("smoke: %s %s: commands %s/%s produced, %s acked, %d failed; kills %d/%d; workers ready %d/%d; ids verified %d/%d",
		clock(time.Since(r.start)), r.phase, num(r.produced), num(r.cfg.Messages), num(r.acked), r.failed,
		len(r.res.Kills), r.cfg.Kills, ready, r.cfg.Workers, r.verified, r.cfg.Generator.IDs)
	if r.phase == phaseConfirming {
		line += fmt.Sprintf(", confirmed %d/%d", r.confirmed, r.cfg.Generator.IDs)
	}
	return line
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomSeed returns a random positive seed.
func randomSeed() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	if s == 0 {
		s = 1
	}
	return s
}
