package module

import (
	"sort"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// Kind is the kind of a module document, like "io.statefun.kafka.v1/ingress".
type Kind string

// The kinds of StateFun 3.x documents that stateloop reads.
const (
	KindHTTPEndpointV2    Kind = "io.statefun.endpoints.v2/http"
	KindHTTPEndpointV1    Kind = "io.statefun.endpoints.v1/http"
	KindKafkaIngress      Kind = "io.statefun.kafka.v1/ingress"
	KindKafkaEgress       Kind = "io.statefun.kafka.v1/egress"
	KindPlaygroundIngress Kind = "io.statefun.playground.v1/ingress"
	KindPlaygroundEgress  Kind = "io.statefun.playground.v1/egress"
)

// The kinds of the entries of a StateFun 1.x or 2.x file (version "1.0"
// or "2.0"), as the file names them: a function's meta.kind, and the
// meta.type of the ingresses and egresses stateloop reads.
const (
	KindHTTPFunction         Kind = "http"
	KindRoutableKafkaIngress Kind = "statefun.kafka.io/routable-protobuf-ingress"
	KindGenericKafkaEgress   Kind = "statefun.kafka.io/generic-egress"
)

// The kinds of StateFun 3.x documents that stateloop knows but does not
// run; [Parse] rejects them with a message saying so.
const (
	KindKinesisIngress Kind = "io.statefun.kinesis.v1/ingress"
	KindKinesisEgress  Kind = "io.statefun.kinesis.v1/egress"
)

// Module is a parsed and checked StateFun module.yaml.
//
// A Module is plain data; the runtime may read it from several goroutines
// as long as nobody changes it.
type Module struct {
	// File is the name the module was parsed under.
	File string
	// Legacy is true for a file in the single-document format of StateFun
	// 3.0 ("version: 3.0"), which StateFun 3.x still reads.
	Legacy bool
	// Version is the version key of a single-document file: "3.0", or
	// "1.0" and "2.0" for the formats of StateFun 2.x, whose functions
	// speak the StateFun 2.x protocol ([Protocol2]); "" for a file of
	// kind/spec documents.
	Version string
	// Endpoints bind function types to HTTP endpoints, in file order.
	Endpoints []*Endpoint
	// Ingresses are the Kafka ingresses, in file order.
	Ingresses []*KafkaIngress
	// Egresses are the Kafka egresses, in file order.
	Egresses []*KafkaEgress
	// PlaygroundIngress and PlaygroundEgress are the StateFun playground's
	// HTTP ingress and egress; nil when the file has none.
	PlaygroundIngress *PlaygroundIngress
	PlaygroundEgress  *PlaygroundEgress
	// Warnings lists settings that were accepted but have no effect, like
	// transport timeouts the async transport does not use.
	Warnings []Problem
}

// Endpoint binds one function type, or every function type of a
// namespace, to an HTTP endpoint that serves StateFun's remote
// request-reply protocol.
type Endpoint struct {
	Pos Position
	// Kind is KindHTTPEndpointV2 or KindHTTPEndpointV1, or KindHTTPFunction
	// for a function of a StateFun 1.x/2.x file.
	Kind Kind
	// Protocol is the request-reply protocol the endpoint's functions
	// speak: Protocol3, or Protocol2 for the functions of a StateFun
	// 1.x/2.x file (version "1.0" or "2.0"). The two cannot be told apart
	// on the wire, so the format of the file decides.
	Protocol Protocol
	// Functions is the binding as written: "ns/name", or "ns/*" for every
	// function type of the namespace.
	Functions string
	// Namespace is the namespace of the binding.
	Namespace string
	// Type is the bound function type; "" for a namespace binding.
	Type functions.TypeName
	// URLPathTemplate is the endpoint URL, in which "{function.name}"
	// stands for the name part of the function type.
	URLPathTemplate string
	// MaxNumBatchRequests caps the messages queued per address while a
	// request is in flight; 0 means no cap (StateFun: any value <= 0).
	MaxNumBatchRequests int
	Transport           Transport
	// States are the state values a StateFun 2.x function declares in the
	// file (spec.states), in file order; every request carries all of
	// them. Nil for Protocol3 endpoints, whose functions declare their
	// state themselves.
	States []State
}

// Protocol is a version of StateFun's remote request-reply protocol.
type Protocol int

const (
	// Protocol3 is the protocol of the StateFun 3.x SDKs: messages and
	// state values are TypedValues, and a function declares its state
	// itself (the runtime learns it from the first answer).
	Protocol3 Protocol = iota
	// Protocol2 is the protocol of the StateFun 2.x SDKs
	// (apache-flink-statefun 2.x for Python): messages are protobuf Any
	// values, state values opaque bytes, and every state is declared in
	// the module file.
	Protocol2
)

// String returns "StateFun 3.x" or "StateFun 2.x".
func (p Protocol) String() string {
	if p == Protocol2 {
		return "StateFun 2.x"
	}
	return "StateFun 3.x"
}

// State is a state value that a StateFun 2.x function declares in the
// module file.
type State struct {
	Pos  Position
	Name string
	// Expiration is from expireAfter and expireMode; the zero value never
	// expires.
	Expiration functions.Expiration
}

// DefaultMaxNumBatchRequests is StateFun's default for maxNumBatchRequests.
const DefaultMaxNumBatchRequests = 1000

// Transport is the HTTP client of an endpoint.
type Transport struct {
	// Type is TransportAsync or TransportOkHTTP. Version 1 endpoints always
	// use TransportOkHTTP; version 2 endpoints default to TransportAsync.
	Type TransportType
	// CallTimeout bounds a whole call, retries included.
	CallTimeout time.Duration
	// ConnectTimeout bounds connecting (and, for async, taking a pooled
	// connection).
	ConnectTimeout time.Duration
	// ReadTimeout and WriteTimeout bound single reads and writes; set for
	// TransportOkHTTP only.
	ReadTimeout, WriteTimeout time.Duration
	// PoolTTL is the longest a pooled connection is kept (0 = no limit),
	// PoolSize the most connections, PayloadMaxBytes the largest request
	// or response; set for TransportAsync only.
	PoolTTL         time.Duration
	PoolSize        int
	PayloadMaxBytes int
	// TLS holds the files for https endpoints (TransportAsync only).
	TLS TLS
}

// TransportType names an HTTP client implementation of StateFun.
type TransportType string

// The transports of StateFun 3.x.
const (
	TransportAsync  TransportType = "io.statefun.transports.v1/async"
	TransportOkHTTP TransportType = "io.statefun.transports.v1/okhttp"
)

// Defaults of the transports, as in StateFun 3.3.
const (
	DefaultAsyncCallTimeout       = 2 * time.Minute
	DefaultAsyncConnectTimeout    = 20 * time.Second
	DefaultAsyncPoolTTL           = 15 * time.Second
	DefaultAsyncPoolSize          = 1024
	DefaultAsyncPayloadMaxBytes   = 32 << 20
	DefaultOkHTTPCallTimeout      = time.Minute
	DefaultOkHTTPConnectTimeout   = 10 * time.Second
	DefaultOkHTTPReadWriteTimeout = 10 * time.Second
)

// TLS names the files of an endpoint's TLS client configuration. Each is a
// path as resolved by [Parse] (see the package documentation); "" when not
// set. The files were readable when the module was parsed.
type TLS struct {
	// TrustCACerts is a PEM file of CA certificates to trust instead of
	// the system's.
	TrustCACerts string
	// ClientCert and ClientKey are the PEM certificate and PKCS#8 key for
	// mutual TLS; both or neither are set.
	ClientCert, ClientKey string
	// ClientKeyPassword is a file holding the key's password.
	ClientKeyPassword string
}

// KafkaIngress reads Kafka topics and sends each record to function
// addresses, with the record key as the id.
type KafkaIngress struct {
	Pos Position
	ID  functions.TypeName
	// Address is the bootstrap server list, from "address" or else the
	// "bootstrap.servers" property; nil when neither is set.
	Address []string
	// ConsumerGroupID is from "consumerGroupId" or else the "group.id"
	// property.
	ConsumerGroupID string
	Topics          []IngressTopic
	// AutoOffsetReset is "latest" (the default) or "earliest".
	AutoOffsetReset string
	StartupPosition StartupPosition
	// Properties are the Kafka consumer properties as written.
	Properties map[string]string
}

// IngressTopic routes the records of one topic.
type IngressTopic struct {
	Pos       Position
	Topic     topology.Topic
	ValueType functions.TypeName
	Targets   []functions.TypeName
}

// StartupPosition says where an ingress starts reading.
type StartupPosition struct {
	// Type is one of the Startup constants; StartupLatest by default.
	Type string
	// Offsets are the start offsets of StartupSpecificOffsets.
	Offsets []PartitionOffset
	// Date is the start time of StartupDate.
	Date time.Time
}

// The startup position types of a Kafka ingress.
const (
	StartupEarliest        = "earliest"
	StartupLatest          = "latest"
	StartupGroupOffsets    = "group-offsets"
	StartupSpecificOffsets = "specific-offsets"
	StartupDate            = "date"
)

// PartitionOffset is a start offset of one partition.
type PartitionOffset struct {
	Topic     topology.Topic
	Partition int32
	Offset    int64
}

// KafkaEgress is a Kafka output that functions address by ID; each record
// names its own topic.
type KafkaEgress struct {
	Pos Position
	ID  functions.TypeName
	// Address is the bootstrap server list.
	Address []string
	// DeliverySemantic is one of the Delivery constants; DeliveryAtLeastOnce
	// by default.
	DeliverySemantic string
	// TransactionTimeout is set for DeliveryExactlyOnce.
	TransactionTimeout time.Duration
	// Properties are the Kafka producer properties as written.
	Properties map[string]string
}

// The delivery semantics of a Kafka egress.
const (
	DeliveryExactlyOnce = "exactly-once"
	DeliveryAtLeastOnce = "at-least-once"
	DeliveryNone        = "none"
)

// PlaygroundIngress is the StateFun playground's HTTP ingress
// (io.statefun.playground.v1/ingress): PUT or POST /<ns>/<type>/<id>.
type PlaygroundIngress struct {
	Pos  Position
	Port int
}

// PlaygroundEgress is the StateFun playground's HTTP egress
// (io.statefun.playground.v1/egress): GET /<topic> pops a record.
type PlaygroundEgress struct {
	Pos    Position
	Port   int
	Topics []string
}

// Wildcard reports whether e binds every function type of a namespace.
func (e *Endpoint) Wildcard() bool { return e.Type == "" }

// Matches reports whether e binds t, exactly or by namespace.
func (e *Endpoint) Matches(t functions.TypeName) bool {
	if e.Type != "" {
		return e.Type == t
	}
	return t.Namespace() == e.Namespace && t.Name() != ""
}

// URLFor returns the URL to call for function type t: the template with
// every "{function.name}" replaced by t's name. The namespace is not
// substituted, as in StateFun.
func (e *Endpoint) URLFor(t functions.TypeName) string {
	return strings.ReplaceAll(e.URLPathTemplate, functionNamePlaceholder, t.Name())
}

const functionNamePlaceholder = "{function.name}"

// EndpointFor returns the endpoint that serves function type t. A binding
// of exactly t wins over a namespace binding; ok is false when neither
// exists (the function must then be a Go function of the application).
func (m *Module) EndpointFor(t functions.TypeName) (e *Endpoint, ok bool) {
	var wildcard *Endpoint
	for _, ep := range m.Endpoints {
		if ep.Type == t {
			return ep, true
		}
		if ep.Wildcard() && wildcard == nil && ep.Matches(t) {
			wildcard = ep
		}
	}
	return wildcard, wildcard != nil
}

// UnboundTargets returns the ingress targets that no endpoint serves,
// sorted and without repeats. They are not an error in a module: they may
// be Go functions of the application; the runtime checks that they exist.
func (m *Module) UnboundTargets() []functions.TypeName {
	seen := make(map[functions.TypeName]bool)
	var out []functions.TypeName
	for _, in := range m.Ingresses {
		for _, t := range in.Topics {
			for _, fn := range t.Targets {
				if _, ok := m.EndpointFor(fn); !ok && !seen[fn] {
					seen[fn] = true
					out = append(out, fn)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
