package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otelEnv are the variables the tests of tracingFromEnv set; each test
// clears the others.
var otelEnv = []string{envSDKDisabled, envTracesExporter, envEndpoint, envTracesEndpoint, envProtocol, envTracesProtocol,
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"}

func setOtelEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, env[k])
	}
}

// Tracing is off unless the environment asks for it the OpenTelemetry
// way; what stateloop cannot do is refused at start-up, every problem at
// once.
func TestTracingFromEnvIsOffByDefaultAndOnWhenAskedFor(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		on   bool
		// protocol is the protocol when on
		protocol string
		// errs are what the error must say; none: no error
		errs []string
	}{
		{name: "nothing set", env: nil},
		{name: "exporter otlp", env: map[string]string{envTracesExporter: "otlp"}, on: true, protocol: "http/protobuf"},
		{name: "an endpoint", env: map[string]string{envEndpoint: "http://collector:4318"}, on: true, protocol: "http/protobuf"},
		{name: "a traces endpoint", env: map[string]string{envTracesEndpoint: "http://collector:4318/v1/traces"}, on: true, protocol: "http/protobuf"},
		{name: "grpc", env: map[string]string{envTracesExporter: "otlp", envProtocol: "grpc"}, on: true, protocol: "grpc"},
		{name: "traces protocol wins", env: map[string]string{envTracesExporter: "otlp", envProtocol: "grpc", envTracesProtocol: "http/protobuf"}, on: true, protocol: "http/protobuf"},
		{name: "exporter none with an endpoint", env: map[string]string{envTracesExporter: "none", envEndpoint: "http://collector:4318"}},
		{name: "sdk disabled", env: map[string]string{envSDKDisabled: "true", envTracesExporter: "otlp"}},
		{name: "sdk not disabled", env: map[string]string{envSDKDisabled: "false", envTracesExporter: "otlp"}, on: true, protocol: "http/protobuf"},
		{name: "other exporters and protocols", env: map[string]string{envTracesExporter: "otlp,zipkin", envProtocol: "http/json", envSDKDisabled: "yes"},
			errs: []string{`OTEL_TRACES_EXPORTER="zipkin"`, `OTLP protocol "http/json"`, `OTEL_SDK_DISABLED="yes"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setOtelEnv(t, tc.env)
			tr, err := tracingFromEnv(context.Background(), "shop")
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("no error, want one saying %q", tc.errs)
				}
				for _, want := range tc.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tr != nil) != tc.on {
				t.Fatalf("tracing on %v, want %v", tr != nil, tc.on)
			}
			if tr == nil {
				return
			}
			defer func() { _ = tr.shutdown() }()
			if tr.protocol != tc.protocol {
				t.Errorf("protocol %s, want %s", tr.protocol, tc.protocol)
			}
		})
	}
}

// The spans go with OTLP over HTTP to the endpoint of the environment,
// with the service name of the environment, and the last ones are
// exported when Run shuts tracing down.
func TestTracingFromEnvExportsSpansWithOTLPToTheEndpoint(t *testing.T) {
	var mu sync.Mutex
	var got []*coltrace.ExportTraceServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("request %s %s (%s), want POST /v1/traces of application/x-protobuf", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("body does not decode as an OTLP export request: %v", err)
		}
		mu.Lock()
		got = append(got, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	setOtelEnv(t, map[string]string{envEndpoint: srv.URL, "OTEL_SERVICE_NAME": "shop-eu"})
	tr, err := tracingFromEnv(context.Background(), "shop")
	if err != nil || tr == nil {
		t.Fatalf("tracingFromEnv = %v, %v; want tracing on", tr, err)
	}
	if s := tr.String(); !strings.Contains(s, srv.URL) || !strings.Contains(s, "http/protobuf") {
		t.Errorf("described as %q, want the endpoint and the protocol", s)
	}
	_, span := tr.tp.Tracer("test").Start(context.Background(), "invoke shop/cart")
	span.End()
	if err := tr.shutdown(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var names, services []string
	for _, req := range got {
		for _, rs := range req.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					services = append(services, kv.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
	}
	if len(names) != 1 || names[0] != "invoke shop/cart" {
		t.Errorf("exported spans %q, want [invoke shop/cart]", names)
	}
	if len(services) != 1 || services[0] != "shop-eu" {
		t.Errorf("service names %q, want [shop-eu] from OTEL_SERVICE_NAME", services)
	}
}
