package interop_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
)

// TestGoSDKDelayedMessagesArriveOnceNotEarlyAndCancelledOnesNever pins
// delayed messages of the official Go SDK (SendAfter,
// SendAfterWithCancellationToken, CancelDelayedMessage), served in-process
// with net/http/httptest, in the scenario of the Python and JavaScript
// SDKs (delayed_test.go).
func TestGoSDKDelayedMessagesArriveOnceNotEarlyAndCancelledOnesNever(t *testing.T) {
	t.Parallel()
	runDelayedScenario(t, delayedSDK{
		name: "Go", ns: "gosdk",
		serve: func(t *testing.T, topic string) string {
			srv := httptest.NewServer(goSDKLaterFunctions(t, "gosdk", laterEgress, topic).AsHandler())
			t.Cleanup(srv.Close)
			return srv.URL
		},
	})
}

// goSDKLaterFunctions returns <ns>/later and <ns>/arrive written with the
// Go SDK, as python/server.py and js/server.js have them.
func goSDKLaterFunctions(t *testing.T, ns, egress, topic string) statefun.StatefulFunctions {
	t.Helper()
	laterType := statefun.MakeJsonType(statefun.TypeNameFrom("interop/Later"))
	arrive := statefun.TypeNameFrom(ns + "/arrive")
	b := statefun.StatefulFunctionsBuilder()
	err := b.WithSpec(statefun.StatefulFunctionSpec{
		FunctionType: statefun.TypeNameFrom(ns + "/later"),
		Function: statefun.StatefulFunctionPointer(func(ctx statefun.Context, msg statefun.Message) error {
			var req laterRequest
			if err := msg.As(laterType, &req); err != nil {
				return err
			}
			if req.Cancel != "" {
				token, err := statefun.NewCancellationToken(req.Cancel)
				if err != nil {
					return err
				}
				ctx.CancelDelayedMessage(token)
				return nil
			}
			m := statefun.MessageBuilder{
				Target: statefun.Address{FunctionType: arrive, Id: ctx.Self().Id},
				Value:  fmt.Sprintf("%s sent %d delay %d", req.Text, time.Now().UnixMilli(), req.DelayMS),
			}
			delay := time.Duration(req.DelayMS) * time.Millisecond // sent as delay.Milliseconds()
			if req.Token == "" {
				ctx.SendAfter(delay, m)
				return nil
			}
			token, err := statefun.NewCancellationToken(req.Token) // rejects ""
			if err != nil {
				return err
			}
			ctx.SendAfterWithCancellationToken(delay, token, m)
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.WithSpec(statefun.StatefulFunctionSpec{
		FunctionType: arrive,
		Function: statefun.StatefulFunctionPointer(func(ctx statefun.Context, msg statefun.Message) error {
			arrived := time.Now().UnixMilli()
			caller := "an-ingress"
			if c := ctx.Caller(); c != nil {
				caller = c.FunctionType.String() + "/" + c.Id
			}
			ctx.SendEgress(statefun.KafkaEgressBuilder{
				Target: statefun.TypeNameFrom(egress),
				Topic:  topic,
				Key:    ctx.Self().Id,
				Value:  fmt.Sprintf("%s arrived %d from %s", msg.AsString(), arrived, caller),
			})
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
