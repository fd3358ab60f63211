package smoke

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/stateloop/stateloop/processor"
)

// ReadyLine is what a worker process prints on its standard output once its
// processor owns partitions with recovered state.
const ReadyLine = "READY"

// WorkerConfig is what one worker process needs: it runs one instance of
// the smoke application.
type WorkerConfig struct {
	Brokers    []string
	App        string
	Partitions int32
	// Instance is the worker's instance id (part of its transactional id);
	// a restarted worker keeps it, so it fences its killed predecessor.
	Instance string
	// DataDir keeps the worker's local state store across restarts.
	DataDir        string
	SessionTimeout time.Duration
	CommitInterval time.Duration
	// LogLevel of the processor's log on the worker's standard error.
	LogLevel slog.Level
	// MaxDelay is the longest delay of the delayed messages the function
	// sends (see [Registry]).
	MaxDelay time.Duration

	// faults break the function on purpose, for the tests.
	faults faults
}

// Args returns the command-line arguments that [ParseWorkerArgs] turns
// back into c.
func (c WorkerConfig) Args() []string {
	return []string{
		"--brokers=" + strings.Join(c.Brokers, ","),
		"--app=" + c.App,
		fmt.Sprintf("--partitions=%d", c.Partitions),
		"--instance=" + c.Instance,
		"--data-dir=" + c.DataDir,
		"--session-timeout=" + c.SessionTimeout.String(),
		"--commit-interval=" + c.CommitInterval.String(),
		"--log-level=" + c.LogLevel.String(),
		"--max-delay=" + c.MaxDelay.String(),
	}
}

// ParseWorkerArgs parses the arguments made by [WorkerConfig.Args].
func ParseWorkerArgs(args []string) (WorkerConfig, error) {
	var c WorkerConfig
	fs := flag.NewFlagSet("smoke worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	brokers := fs.String("brokers", "", "")
	fs.StringVar(&c.App, "app", "", "")
	partitions := fs.Int("partitions", 0, "")
	fs.StringVar(&c.Instance, "instance", "", "")
	fs.StringVar(&c.DataDir, "data-dir", "", "")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 0, "")
	fs.DurationVar(&c.CommitInterval, "commit-interval", 0, "")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelWarn, "")
	fs.DurationVar(&c.MaxDelay, "max-delay", 0, "")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("smoke: worker arguments: %w", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("smoke: worker arguments: unexpected %q", fs.Args())
	}
	c.Partitions = int32(*partitions)
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Brokers = append(c.Brokers, b)
		}
	}
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("smoke: worker: no brokers"))
	}
	if c.App == "" || c.Instance == "" {
		errs = append(errs, errors.New("smoke: worker: app and instance are required"))
	}
	if c.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("smoke: worker: max delay %v: must not be negative", c.MaxDelay))
	}
	return c, errors.Join(errs...)
}

// RunWorker runs one instance of the smoke application until ctx is
// cancelled; it writes [ReadyLine] to ready once the instance owns
// partitions with recovered state. It returns the error of
// [processor.New] or [processor.Processor.Run].
func RunWorker(ctx context.Context, cfg WorkerConfig, ready io.Writer, logger *slog.Logger) error {
	opts := []processor.Option{processor.WithLogger(logger), processor.WithInstanceID(cfg.Instance)}
	if cfg.DataDir != "" {
		opts = append(opts, processor.WithDataDir(cfg.DataDir))
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, processor.WithSessionTimeout(cfg.SessionTimeout))
	}
	if cfg.CommitInterval > 0 {
		opts = append(opts, processor.WithCommitInterval(cfg.CommitInterval))
	}
	p, err := processor.New(cfg.Brokers, Topology(cfg.App, cfg.Partitions), newRegistry(cfg.MaxDelay, cfg.faults), opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if p.Stats().Ready {
					fmt.Fprintln(ready, ReadyLine)
					return
				}
			}
		}
	}()
	return p.Run(ctx)
}

// ServeWorker is the main function of a worker process: it parses args
// (see [WorkerConfig.Args]), runs the worker until ctx is cancelled or
// stdin reaches its end (the driver closes it, or dies), and returns the
// process's exit code. The processor's log goes to stderr.
func ServeWorker(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return serveWorker(ctx, args, stdin, stdout, stderr, nil)
}

func serveWorker(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, tweak func(*WorkerConfig)) int {
	cfg, err := ParseWorkerArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			cancel()
		}()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := RunWorker(ctx, cfg, stdout, logger); err != nil {
		fmt.Fprintf(stderr, "smoke worker %s: %v\n", cfg.Instance, err)
		return 1
	}
	return 0
}
