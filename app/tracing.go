package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TracingHelp is the paragraph about tracing of the --help of a command
// that runs an application with [Run].
const TracingHelp = `Tracing (OpenTelemetry, exported with OTLP) is off unless the standard
environment asks for it: OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318, or
OTEL_TRACES_EXPORTER=otlp; OTEL_EXPORTER_OTLP_PROTOCOL is http/protobuf (the
default) or grpc. docs/operations.md ("Tracing") lists the variables read.`

// tracingShutdownTimeout bounds how long Run waits, when it stops, for the
// last spans to be exported.
const tracingShutdownTimeout = 5 * time.Second

// The OpenTelemetry environment variables that decide whether Run traces
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
// The OTLP exporter and the SDK read the others themselves:
// OTEL_EXPORTER_OTLP[_TRACES]_{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,
// CERTIFICATE,CLIENT_KEY,CLIENT_CERTIFICATE,INSECURE},
// OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*, OTEL_SPAN_*_LIMIT,
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
const (
	envSDKDisabled    = "OTEL_SDK_DISABLED"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// tracing is the tracer provider Run makes from the environment.
type tracing struct {
	tp       *sdktrace.TracerProvider
	protocol string // grpc, http/protobuf
	endpoint string // as set, or "" for the exporter's default
}

// tracingFromEnv makes the tracer provider that the OTEL_* environment
// variables ask for, exporting with OTLP; nil when tracing is off.
//
// Unlike an OpenTelemetry SDK, whose OTEL_TRACES_EXPORTER defaults to
// otlp, tracing is off unless asked for: OTEL_TRACES_EXPORTER=otlp, or an
// OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) with OTEL_TRACES_EXPORTER unset.
// OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true turn it off. The
// protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf (the spec's default);
// grpc is the other one supported. The service name defaults to the
// application's name; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// override it.
//
// It returns an error naming every unsupported value: an exporter other
// than otlp or none, a protocol other than grpc or http/protobuf, an
// OTEL_SDK_DISABLED that is not a boolean, a resource attribute list that
// does not parse.
func tracingFromEnv(ctx context.Context, appName string) (*tracing, error) {
	getenv := os.Getenv
	var errs []error
	disabled := strings.TrimSpace(getenv(envSDKDisabled))
	switch strings.ToLower(disabled) {
	case "", "false":
	case "true":
		return nil, nil
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want true or false", envSDKDisabled, disabled))
	}
	otlp, none := false, false
	for _, e := range strings.Split(getenv(envTracesExporter), ",") {
		switch e = strings.TrimSpace(e); e {
		case "":
		case "otlp":
			otlp = true
		case "none":
			none = true
		default:
			errs = append(errs, fmt.Errorf("%s=%q: stateloop exports traces with otlp only; set otlp, or none to turn tracing off", envTracesExporter, e))
		}
	}
	endpoint := getenv(envTracesEndpoint)
	if endpoint == "" {
		endpoint = getenv(envEndpoint)
	}
	protocol := strings.TrimSpace(getenv(envTracesProtocol))
	if protocol == "" {
		protocol = strings.TrimSpace(getenv(envProtocol))
	}
	switch protocol {
	case "":
		protocol = "http/protobuf"
	case "grpc", "http/protobuf":
	default:
		errs = append(errs, fmt.Errorf("OTLP protocol %q: stateloop sends grpc or http/protobuf (the default)", protocol))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("app: tracing: %w", errors.Join(errs...))
	}
	if !otlp && (none || endpoint == "") {
		return nil, nil
	}
	var exp *otlptrace.Exporter
	var err error
	if protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("app: tracing: the OTLP exporter: %w", err)
	}
	// later sources win: the application's name, then the environment
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attribute.String("service.name", appName)), resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("app: tracing: OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &tracing{tp: tp, protocol: protocol, endpoint: endpoint}, nil
}

// String describes where the spans go, for a progress line.
func (t *tracing) String() string {
	at := t.endpoint
	if at == "" {
		at = "the default endpoint"
		if t.protocol == "grpc" {
			at += " localhost:4317"
		} else {
			at += " http://localhost:4318"
		}
	}
	return fmt.Sprintf("OTLP %s to %s", t.protocol, at)
}

// shutdown exports the spans still queued and stops the exporter, within
// tracingShutdownTimeout.
func (t *tracing) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("app: tracing: export the last spans: %w", err)
	}
	return nil
}
