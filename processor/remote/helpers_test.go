package remote_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	// The SDK logs every registration and missing-state reply with the
	// standard logger.
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// sdkServer serves StateFun Go SDK functions over httptest and records
// every request it gets, decoded with our own pb types.
type sdkServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	path string
	req  *pb.ToFunction
}

func newSDKServer(t testing.TB, specs ...statefun.StatefulFunctionSpec) *sdkServer {
	t.Helper()
	builder := statefun.StatefulFunctionsBuilder()
	for _, s := range specs {
		if err := builder.WithSpec(s); err != nil {
			t.Fatalf("register %s: %v", s.FunctionType, err)
		}
	}
	h := builder.AsHandler()
	s := &sdkServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req pb.ToFunction
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("request does not decode: %v", err)
		}
		s.mu.Lock()
		s.requests = append(s.requests, recorded{path: r.URL.Path, req: &req})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sdkServer) recorded() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.requests...)
}

func (s *sdkServer) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func newClient(t testing.TB, cfg remote.Config) *remote.Client {
	t.Helper()
	c, err := remote.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func call(msg functions.Message) remote.Call { return remote.Call{Argument: msg} }

func addr(typ, id string) functions.Address {
	return functions.Address{Type: functions.TypeName(typ), ID: id}
}

// applyState applies state changes to a stored state map with the
// runtime's rules (driver.ApplyState), without expiring state.
func applyState(state map[string]driver.StoredValue, changes []driver.StateChange) map[string]driver.StoredValue {
	next, _ := driver.ApplyState(state, false, changes, nil, time.Time{})
	return next
}

func mustAs[T any](t testing.TB, typ functions.Type[T], m functions.Message) T {
	t.Helper()
	v, err := typ.As(m)
	if err != nil {
		t.Fatalf("decode %s: %v", m.TypeName(), err)
	}
	return v
}
