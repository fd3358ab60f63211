package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/stateloop/stateloop/topology"
)

// EnvBrokers is the environment variable that gives the default of
// --brokers: a comma-separated list of host:port.
const EnvBrokers = "STATELOOP_BROKERS"

// Defaults of the flags that [Flags.Register] adds.
const (
	DefaultListen         = "127.0.0.1:9092"
	DefaultDataDir        = "./stateloop-data"
	DefaultCommitInterval = 100 * time.Millisecond
)

// Flags are the command-line settings of a stateloop application. The zero
// value is valid: an embedded broker on [DefaultListen], everything kept in
// memory, the default partitions and commit interval, info logs as text.
type Flags struct {
	// Brokers are the Kafka bootstrap brokers (host:port). Empty means:
	// start an embedded broker.
	Brokers []string
	// Listen is the address of the embedded broker, used only when Brokers
	// is empty; "" means DefaultListen. Port 0 picks a free port.
	Listen string
	// DataDir holds the local state store, the instance id and, in
	// <DataDir>/broker, the embedded broker's data. "" keeps everything in
	// memory.
	DataDir string
	// Partitions is the partition count of the application's internal
	// topics, used when the topology does not set one; 0 means
	// topology.DefaultPartitions.
	Partitions int32
	// CommitInterval bounds how long a Kafka transaction stays open; 0
	// means DefaultCommitInterval.
	CommitInterval time.Duration
	// InstanceID is the stable identity of this instance: part of its
	// Kafka transactional id and its group.instance.id (static membership);
	// "" keeps one in DataDir (random without one). Two running instances
	// must not share one.
	InstanceID string
	// LogLevel is debug, info, warn or error; "" means info.
	LogLevel string
	// LogFormat is text or json; "" means text.
	LogFormat string
	// ModuleFile is a StateFun module.yaml whose remote functions, Kafka
	// ingresses and egresses join the application; "" for none.
	ModuleFile string
	// HTTP is the address of the HTTP listener (ingress with replies,
	// health checks); "" for none.
	HTTP string
}

// Register adds the flags to fs, with their defaults stored in f: --brokers
// (default from the environment variable STATELOOP_BROKERS), --listen,
// --data-dir, --partitions, --commit-interval, --instance-id, --log-level
// and --log-format.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.Brokers, "brokers", SplitBrokers(os.Getenv(EnvBrokers)),
		"Kafka brokers to connect to, comma-separated host:port (env "+EnvBrokers+"); without it an embedded broker is started")
	fs.StringVar(&f.Listen, "listen", DefaultListen,
		"address of the embedded broker when --brokers is not set; port 0 picks a free port")
	fs.StringVar(&f.DataDir, "data-dir", DefaultDataDir,
		`directory for the local state store, the instance id and the embedded broker's data (in <data-dir>/broker); "" keeps everything in memory`)
	fs.Int32Var(&f.Partitions, "partitions", topology.DefaultPartitions,
		"partitions of the application's internal topics, unless the application sets them; cannot change once the topics exist")
	fs.DurationVar(&f.CommitInterval, "commit-interval", DefaultCommitInterval,
		"how long a Kafka transaction stays open at most; bounds the latency of every hop")
	fs.StringVar(&f.InstanceID, "instance-id", "",
		"stable id of this instance: in its Kafka transactional id and group.instance.id (default: kept in --data-dir); every running instance needs its own")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVarP(&f.ModuleFile, "module", "f", "",
		"a StateFun module.yaml whose remote functions (HTTP endpoints), Kafka ingresses and egresses join the application")
	fs.StringVar(&f.HTTP, "http", "",
		"address of the HTTP listener, e.g. 127.0.0.1:8080: POST /v1/functions/{namespace}/{name}/{id} sends a message (?wait=5s waits for the reply), /healthz, /readyz")
}

// SplitBrokers splits a comma-separated broker list, dropping blanks.
func SplitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Validate reports every problem of the flags, joined with errors.Join;
// each names the flag and says what to pass instead.
func (f Flags) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("app: "+format, args...)) }
	for _, b := range f.Brokers {
		if err := checkHostPort(strings.TrimSpace(b)); err != nil {
			add("--brokers %q: %v; pass host:port, e.g. --brokers 127.0.0.1:9092", b, err)
		}
	}
	if len(f.Brokers) == 0 && f.Listen != "" {
		if err := checkHostPort(f.Listen); err != nil {
			add("--listen %q: %v; pass host:port, e.g. --listen 127.0.0.1:9092 (port 0 picks a free port)", f.Listen, err)
		}
	}
	if f.Partitions < 0 {
		add("--partitions %d: must be at least 1", f.Partitions)
	}
	if f.CommitInterval < 0 {
		add("--commit-interval %v: must be positive, e.g. --commit-interval 100ms", f.CommitInterval)
	}
	if strings.IndexFunc(f.InstanceID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		add("--instance-id %q: must not contain white space", f.InstanceID)
	}
	if _, err := parseLevel(f.LogLevel); err != nil {
		add("--log-level %q: want debug, info, warn or error", f.LogLevel)
	}
	switch strings.ToLower(f.LogFormat) {
	case "", "text", "json":
	default:
		add("--log-format %q: want text or json", f.LogFormat)
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("unknown level")
}

// Logger returns the logger that --log-level and --log-format ask for,
// writing to w. Invalid values (see [Flags.Validate]) fall back to info and
// text.
func (f Flags) Logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(f.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(f.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
