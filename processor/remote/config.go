package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions/driver"
)

// Defaults, as in StateFun's io.statefun.endpoints.v2/http endpoint.
const (
	DefaultCallTimeout         = time.Minute
	DefaultConnectTimeout      = 10 * time.Second
	DefaultMaxNumBatchRequests = 1000
	DefaultMaxInFlight         = 1024
	DefaultMaxResponseBytes    = 32 << 20
)

// functionNamePlaceholder is the one placeholder of a URL template.
const functionNamePlaceholder = "{function.name}"

// Config describes one HTTP endpoint that serves remote functions, with
// the settings of a StateFun io.statefun.endpoints.v2/http endpoint. The
// zero value of each duration and limit means its default.
type Config struct {
	// URL is the endpoint's URL template (StateFun's urlPathTemplate), an
	// http or https URL. Each "{function.name}" in it is replaced by the
	// name part of the invoked function type: for example/greeter,
	// "http://fns:8000/{function.name}" becomes "http://fns:8000/greeter".
	URL string

	// CallTimeout bounds one Invoke after it starts sending: every HTTP
	// attempt, retry and missing-state round trip of it. Default 1m.
	CallTimeout time.Duration
	// ConnectTimeout bounds opening a connection, TLS handshake included.
	// Default 10s.
	ConnectTimeout time.Duration
	// ReadTimeout bounds the wait for the response headers after the
	// request was sent, that is the time the function may take. Default:
	// no bound of its own (the call timeout still applies), like
	// StateFun's default transport.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write of the request to the connection.
	// Default: no bound of its own.
	WriteTimeout time.Duration

	// MaxNumBatchRequests is the most calls one request carries for an
	// address, and the backlog per address at which a [Batcher] reports
	// backpressure. Default 1000; negative means no limit (StateFun's
	// "≤ 0").
	MaxNumBatchRequests int
	// MaxInFlight bounds the HTTP requests this client has open at once,
	// and sizes its connection pool. Default 1024.
	MaxInFlight int
	// MaxResponseBytes bounds the size of a response body. Default 32 MiB.
	MaxResponseBytes int64

	// TLS configures https endpoints.
	TLS TLSConfig

	// Protocol is the version of the request-reply protocol the
	// endpoint's functions speak: Protocol3 (the zero value) or Protocol2.
	Protocol Protocol
	// States are the states that the endpoint's functions declare, for
	// Protocol2 only (StateFun 2.x declares them in the module file):
	// every request carries all of them, and only they may be changed.
	// Names must be unique and not empty. With Protocol3 functions
	// declare their state themselves, and States must be empty.
	States []driver.StateInfo

	// Logger receives a Warn record for each retried attempt. Default: no
	// logging.
	Logger *slog.Logger
}

// Protocol is a version of StateFun's remote request-reply protocol. The
// versions use the same field numbers with other value types, so a
// message of one parses as the other without an error and with its
// values garbled: the endpoint's configuration must say which one its
// functions speak. [Client.Invoke] fails an invocation whose response
// shows the other version, rather than apply garbled effects.
type Protocol int

const (
	// Protocol3 is the protocol of the StateFun 3.x SDKs: messages and
	// state values are TypedValues, and functions declare their state
	// themselves, which the client learns from their
	// IncompleteInvocationContext answers.
	Protocol3 Protocol = iota
	// Protocol2 is the protocol of the StateFun 2.x SDKs (the
	// apache-flink-statefun 2.x Python SDK): messages are protobuf Any
	// values, a message of type name T being an Any with type URL T;
	// state values are opaque bytes, stored as the type name and value
	// of the Any they hold (see [Client.Invoke]); every state is declared
	// in Config.States and sent on every request; delayed messages have
	// no cancellation.
	Protocol2
)

// String returns "StateFun 3.x" or "StateFun 2.x".
func (p Protocol) String() string {
	if p == Protocol2 {
		return "StateFun 2.x"
	}
	return "StateFun 3.x"
}

// TLSConfig holds the files for TLS and mutual TLS, in PEM format.
type TLSConfig struct {
	// CAFile holds the CA certificates that the endpoint's certificate
	// must chain to (StateFun's trust_cacerts). Empty means the system's
	// roots.
	CAFile string
	// CertFile and KeyFile hold the client certificate and its private
	// key (PKCS#1, PKCS#8 or SEC 1), for endpoints that require mutual
	// TLS. Set both or neither.
	CertFile string
	KeyFile  string
}

func (c Config) withDefaults() Config {
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxNumBatchRequests == 0 {
		c.MaxNumBatchRequests = DefaultMaxNumBatchRequests
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every problem of c (defaults applied) at once.
func (c Config) validate() error {
	var errs []error
	u, err := url.Parse(strings.ReplaceAll(c.URL, functionNamePlaceholder, "name"))
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("remote: endpoint URL is empty"))
	case err != nil:
		errs = append(errs, fmt.Errorf("remote: endpoint URL %q: %w", c.URL, err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("remote: endpoint URL %q: scheme must be http or https", c.URL))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("remote: endpoint URL %q has no host", c.URL))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"call", c.CallTimeout}, {"connect", c.ConnectTimeout}, {"read", c.ReadTimeout}, {"write", c.WriteTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("remote: %s timeout %v: must not be negative", d.name, d.v))
		}
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("remote: max in-flight requests %d: must not be negative", c.MaxInFlight))
	}
	if c.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("remote: max response bytes %d: must not be negative", c.MaxResponseBytes))
	}
	switch c.Protocol {
	case Protocol3:
		if len(c.States) > 0 {
			errs = append(errs, errors.New("remote: states are declared for StateFun 2.x endpoints only; StateFun 3.x functions declare their own"))
		}
	case Protocol2:
		seen := make(map[string]bool)
		for _, s := range c.States {
			if s.Name == "" {
				errs = append(errs, errors.New("remote: a declared state has no name"))
			} else if seen[s.Name] {
				errs = append(errs, fmt.Errorf("remote: state %q is declared twice", s.Name))
			}
			seen[s.Name] = true
		}
	default:
		errs = append(errs, fmt.Errorf("remote: unknown protocol %d", c.Protocol))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("remote: TLS client certificate and key: set both files or neither"))
	}
	return errors.Join(errs...)
}

// tlsConfig loads the files of t. It returns nil for an empty t.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if t == (TLSConfig{}) {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("remote: read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("remote: TLS CA file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("remote: load TLS client certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
