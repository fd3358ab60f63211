package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
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

// EnvHTTPToken is the environment variable that can hold the HTTP
// listener's bearer token, instead of --http-token-file.
const EnvHTTPToken = "STATELOOP_HTTP_TOKEN"

// minTokenLength is the shortest token the HTTP listener takes.
const minTokenLength = 16

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
	// <DataDir>/broker, the embedded broker's data. Run locks it while it
	// runs: a second instance on the same directory fails at once. ""
	// keeps everything in memory.
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
	// Threads is the number of stream threads; 0 means one per core
	// (runtime.NumCPU).
	Threads int
	// ReplicationFactor is the replication factor of the topics the
	// application creates: 0 chooses from the cluster at start-up (3 on
	// three or more brokers, else 1), -1 leaves it to the broker's
	// default.replication.factor. More than the cluster's brokers fails
	// at start-up.
	ReplicationFactor int
	// MinInsyncReplicas is min.insync.replicas of the topics the
	// application creates: 0 chooses from the replication factor (2 with
	// 3 or more, else 1), -1 leaves it to the broker's default.
	MinInsyncReplicas int
	// Standbys is the number of warm standby copies of each partition's
	// local state that other instances keep (processor.WithStandbys).
	Standbys int
	// LogLevel is debug, info, warn or error; "" means info.
	LogLevel string
	// LogFormat is text or json; "" means text.
	LogFormat string
	// ModuleFiles are StateFun module.yaml files whose remote functions,
	// Kafka ingresses and egresses join the application; none for none.
	// Several files are one application, as StateFun loads every module
	// it finds: so functions of StateFun 2.x (a version "2.0" file) and
	// 3.x (a kind/spec file) run together.
	ModuleFiles []string
	// HTTP is the address of the HTTP listener (ingress with replies,
	// health checks); "" for none. An address beyond loopback needs a
	// token.
	HTTP string
	// HTTPTokenFile is a file that holds the bearer token every request
	// to the HTTP listener needs (but health checks and the console page);
	// white space around it is dropped.
	HTTPTokenFile string
	// HTTPToken is the token itself, if not from a file: Register sets it
	// from the environment variable STATELOOP_HTTP_TOKEN (a flag would
	// show it in the process list).
	HTTPToken string
	// HTTPAllowHosts are more host names the HTTP listener answers to
	// besides the loopback ones (on a loopback address), e.g. the name a
	// reverse proxy passes on; on another address they are the only ones.
	HTTPAllowHosts []string
	// HTTPOpenMetrics serves /metrics without the token.
	HTTPOpenMetrics bool
	// HTTPMaxConns bounds the listener's open connections; 0 means
	// httpapi.DefaultMaxConns.
	HTTPMaxConns int

	// playgroundPaths is set by Run when a module file has StateFun
	// playground's ingress: the HTTP listener serves its paths too.
	playgroundPaths bool
}

// Register adds the flags to fs, with their defaults stored in f: --brokers
// (default from the environment variable STATELOOP_BROKERS), --listen,
// --data-dir, --partitions, --commit-interval, --instance-id, --threads,
// --standbys, --replication-factor, --min-insync-replicas, --log-level,
// --log-format, --module, --http and the --http-* flags. It sets
// f.HTTPToken from the environment variable STATELOOP_HTTP_TOKEN.
func (f *Flags) Register(fs *pflag.FlagSet) {
	f.HTTPToken = os.Getenv(EnvHTTPToken)
	fs.StringSliceVar(&f.Brokers, "brokers", SplitBrokers(os.Getenv(EnvBrokers)),
		"Kafka brokers to connect to, comma-separated host:port (env "+EnvBrokers+"); without it an embedded broker is started")
	fs.StringVar(&f.Listen, "listen", DefaultListen,
		"address of the embedded broker when --brokers is not set; port 0 picks a free port")
	fs.StringVar(&f.DataDir, "data-dir", DefaultDataDir,
		`directory for the local state store, the instance id and the embedded broker's data (in <data-dir>/broker); locked while the instance runs, so every instance needs its own; "" keeps everything in memory`)
	fs.Int32Var(&f.Partitions, "partitions", topology.DefaultPartitions,
		"partitions of the application's internal topics, unless the application sets them; cannot change once the topics exist")
	fs.DurationVar(&f.CommitInterval, "commit-interval", DefaultCommitInterval,
		"how long a Kafka transaction stays open at most; bounds the latency of every hop")
	fs.StringVar(&f.InstanceID, "instance-id", "",
		"stable id of this instance: in its Kafka transactional ids and group instance ids (default: kept in --data-dir); every running instance needs its own")
	fs.IntVar(&f.Threads, "threads", 0,
		"stream threads: each owns a share of the instance's partitions with its own Kafka transactions and runs on its own core (0: one per core)")
	fs.IntVar(&f.ReplicationFactor, "replication-factor", 0,
		"replication factor of the topics the application creates (0: 3 on a cluster of three or more brokers, else 1; -1: the broker's default.replication.factor); at most the cluster's broker count")
	fs.IntVar(&f.MinInsyncReplicas, "min-insync-replicas", 0,
		"min.insync.replicas of the topics the application creates: replicas that must have a write before Kafka confirms it (0: 2 with a replication factor of 3 or more, else 1; -1: the broker's default)")
	fs.IntVar(&f.Standbys, "standbys", 0,
		"warm standby copies of each partition's state that other instances keep up to date, so that one taking a partition over reads only the last changelog records (give every instance the same value)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringArrayVarP(&f.ModuleFiles, "module", "f", nil,
		"a StateFun module.yaml (3.x, or 2.x with version \"2.0\") whose remote functions (HTTP endpoints), Kafka ingresses and egresses join the application; repeat it to run several files as one application")
	fs.StringVar(&f.HTTP, "http", "",
		"address of the HTTP listener, e.g. 127.0.0.1:8080: the web console, POST /v1/functions/{namespace}/{name}/{id} sends a message (?wait=5s waits for the reply), "+
			"GET /v1/state/..., /metrics, /healthz, /readyz; an address beyond loopback needs a token")
	fs.StringVar(&f.HTTPTokenFile, "http-token-file", "",
		"`FILE` with the bearer token that requests to the HTTP listener must send (Authorization: Bearer <token>), at least 16 characters, "+
			"e.g. made with: openssl rand -hex 32 > FILE; or set it in env "+EnvHTTPToken+"; /healthz, /readyz and the console page need none")
	fs.StringSliceVar(&f.HTTPAllowHosts, "http-allow-host", nil,
		"more host names the HTTP listener answers to (the Host header), e.g. the name a reverse proxy passes on; on a loopback address it answers to localhost, 127.0.0.1 and ::1 besides")
	fs.BoolVar(&f.HTTPOpenMetrics, "http-open-metrics", false, "serve /metrics without the token")
	fs.IntVar(&f.HTTPMaxConns, "http-max-connections", 0,
		"connections the HTTP listener keeps open at most; more wait to be accepted (0: 1000)")
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

// CheckBrokers reports every address of brokers that is not host:port,
// and an empty list, for the command named cmd (e.g. "stateloop send"):
// each error starts with cmd and says what to pass instead. Commands that
// take --brokers without the rest of [Flags] use it.
func CheckBrokers(cmd string, brokers []string) error {
	if len(brokers) == 0 {
		return fmt.Errorf("%s: --brokers: none given; pass host:port, e.g. --brokers 127.0.0.1:9092", cmd)
	}
	var errs []error
	for _, b := range brokers {
		if host, _, err := net.SplitHostPort(b); err != nil || host == "" {
			errs = append(errs, fmt.Errorf("%s: --brokers %q: not host:port; pass e.g. --brokers 127.0.0.1:9092", cmd, b))
		}
	}
	return errors.Join(errs...)
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
	if f.Threads < 0 || f.Threads > 256 {
		add("--threads %d: must be between 1 and 256, or 0 for one per core", f.Threads)
	}
	if f.ReplicationFactor < -1 || f.ReplicationFactor > math.MaxInt16 {
		add("--replication-factor %d: must be at least 1, or 0 to choose from the broker count (3 on three or more brokers, else 1), or -1 for the broker's default", f.ReplicationFactor)
	}
	if f.MinInsyncReplicas < -1 {
		add("--min-insync-replicas %d: must be at least 1, or 0 to choose from the replication factor, or -1 for the broker's default", f.MinInsyncReplicas)
	}
	if f.ReplicationFactor > 0 && f.MinInsyncReplicas > f.ReplicationFactor {
		add("--min-insync-replicas %d is more than --replication-factor %d: no write could ever succeed; make it at most %d", f.MinInsyncReplicas, f.ReplicationFactor, f.ReplicationFactor)
	}
	if f.Standbys < 0 || f.Standbys > 16 {
		add("--standbys %d: must be between 0 and 16", f.Standbys)
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
	errs = append(errs, f.validateHTTP()...)
	return errors.Join(errs...)
}

// validateHTTP returns the problems of --http and the --http-* flags.
func (f Flags) validateHTTP() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("app: "+format, args...)) }
	if f.HTTP == "" {
		var set []string
		if f.HTTPTokenFile != "" {
			set = append(set, "--http-token-file")
		}
		if len(f.HTTPAllowHosts) > 0 {
			set = append(set, "--http-allow-host")
		}
		if f.HTTPOpenMetrics {
			set = append(set, "--http-open-metrics")
		}
		if f.HTTPMaxConns != 0 {
			set = append(set, "--http-max-connections")
		}
		if len(set) > 0 {
			add("%s: do nothing without --http; add --http ADDRESS, e.g. --http 127.0.0.1:8080", strings.Join(set, ", "))
		}
		return errs
	}
	host, port, err := net.SplitHostPort(f.HTTP)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		add("--http %q: want host:port, e.g. --http 127.0.0.1:8080 (port 0 picks a free port)", f.HTTP)
	}
	if f.HTTPMaxConns < 0 {
		add("--http-max-connections %d: must be positive, or 0 for the default", f.HTTPMaxConns)
	}
	token, terr := f.httpToken()
	if terr != nil {
		errs = append(errs, terr)
	}
	if err == nil && token == "" && terr == nil && !isLoopback(host) {
		add("--http %s listens beyond this machine (not on a loopback address), where anyone who reaches it could read state and send messages: "+
			"give it a token with --http-token-file FILE or the environment variable %s (e.g. `openssl rand -hex 32 > FILE`), "+
			"or listen on a loopback address such as --http 127.0.0.1:%s", f.HTTP, EnvHTTPToken, port)
	}
	return errs
}

// httpToken returns the HTTP listener's token, "" if there is none.
func (f Flags) httpToken() (string, error) {
	var token, from string
	switch {
	case f.HTTPTokenFile != "" && f.HTTPToken != "":
		return "", fmt.Errorf("app: --http-token-file and %s are both set; give the token one way", EnvHTTPToken)
	case f.HTTPTokenFile != "":
		b, err := os.ReadFile(f.HTTPTokenFile)
		if err != nil {
			return "", fmt.Errorf("app: --http-token-file: %w", err)
		}
		token, from = strings.TrimSpace(string(b)), "--http-token-file "+f.HTTPTokenFile
	case f.HTTPToken != "":
		token, from = f.HTTPToken, EnvHTTPToken
	default:
		return "", nil
	}
	switch {
	case token == "":
		return "", fmt.Errorf("app: %s: the token is empty; write one of at least %d characters, e.g. `openssl rand -hex 32`", from, minTokenLength)
	case strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", fmt.Errorf("app: %s: the token contains white space or control characters; use letters, digits and punctuation", from)
	case len(token) < minTokenLength:
		return "", fmt.Errorf("app: %s: a token of %d characters is easy to guess; use at least %d, e.g. `openssl rand -hex 32`", from, len(token), minTokenLength)
	}
	return token, nil
}

// isLoopback reports whether a listen host is a loopback address (or
// localhost), so that only this machine can connect.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
