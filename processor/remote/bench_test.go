package remote_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote"
)

// BenchmarkInvokeGoSDK measures a round trip through the official Go SDK
// over HTTP on localhost: encode, POST, the SDK's decode/run/encode, and
// decode plus checks of the result. The function is the greeter (one int
// state, one outgoing message); the state of each call is the previous
// result's. Allocations count both sides: client, net/http server and SDK.
func BenchmarkInvokeGoSDK(b *testing.B) {
	for _, size := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			srv := plainSDKServer(b, greeterSpec())
			c := newClient(b, remote.Config{URL: srv.URL + "/{function.name}"})
			ctx := ctxTimeout(b, 10*time.Minute)
			bob := addr("example/greeter", "Bob")
			batch := make([]remote.Call, size)
			for i := range batch {
				batch[i] = call(functions.StringType.Of("Bob"))
			}
			var state map[string]driver.StoredValue
			res, err := c.Invoke(ctx, bob, state, batch) // learns the specs
			if err != nil {
				b.Fatal(err)
			}
			state = applyState(state, res.State)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := c.Invoke(ctx, bob, state, batch)
				if err != nil {
					b.Fatal(err)
				}
				state[res.State[0].Name] = res.State[0].Value
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/call")
		})
	}
	b.Run("parallel", func(b *testing.B) {
		srv := plainSDKServer(b, greeterSpec())
		c := newClient(b, remote.Config{URL: srv.URL + "/{function.name}"})
		ctx := ctxTimeout(b, 10*time.Minute)
		if _, err := c.Invoke(ctx, addr("example/greeter", "warm"), nil, []remote.Call{call(functions.StringType.Of("x"))}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			batch := []remote.Call{call(functions.StringType.Of("Bob"))}
			for i := 0; pb.Next(); i++ {
				if _, err := c.Invoke(ctx, addr("example/greeter", fmt.Sprint(i%64)), nil, batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// plainSDKServer serves SDK functions without recording requests.
func plainSDKServer(b *testing.B, specs ...statefun.StatefulFunctionSpec) *httptest.Server {
	builder := statefun.StatefulFunctionsBuilder()
	for _, s := range specs {
		if err := builder.WithSpec(s); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(builder.AsHandler())
	b.Cleanup(srv.Close)
	return srv
}
