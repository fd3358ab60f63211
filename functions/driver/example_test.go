package driver_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
)

// A runtime hands Invoke the stored state of the address, without expired
// values, and applies the effects it returns; this is what the processor
// does for each record.
func ExampleInvoke() {
	visits := functions.NewState("visits", functions.LongType).ExpireAfterCall(time.Hour)
	greet := func(ctx functions.Context, name string) error {
		n, _ := visits.Get(ctx)
		visits.Set(ctx, n+1)
		ctx.SendEgress("example/greetings", functions.KafkaMessage("greetings", name, fmt.Appendf(nil, "Hello %s, visit %d", name, n+1)))
		return nil
	}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     "example/greeter",
		Function: functions.Router(functions.Handle(functions.StringType, greet)),
		State:    []functions.StateSpec{visits},
		Egresses: []functions.TypeName{"example/greetings"},
	})
	infos, _ := driver.States(reg, "example/greeter")
	exps := driver.Expirations(infos)

	var stored map[string]driver.StoredValue // the address's values in the runtime's store
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, after := range []time.Duration{0, 30 * time.Minute, 2 * time.Hour} {
		now = now.Add(after)
		current := driver.Unexpired(stored, now)
		effects, err := driver.Invoke(context.Background(), reg, driver.Invocation{
			Target:  functions.Address{Type: "example/greeter", ID: "bob"},
			Message: functions.StringType.Of("Bob"),
			State:   current,
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		if next, write := driver.ApplyState(current, false, effects.State, exps, now); write {
			stored = next
		}
		for _, e := range effects.Egress {
			rec, _ := functions.KafkaRecordType.As(e.Message)
			fmt.Printf("%s %s: %s (visits expire at %s)\n", e.Egress, rec.Topic, rec.Value, stored["visits"].ExpiresAt.Format(time.TimeOnly))
		}
	}
	// Output:
	// example/greetings greetings: Hello Bob, visit 1 (visits expire at 01:00:00)
	// example/greetings greetings: Hello Bob, visit 2 (visits expire at 01:30:00)
	// example/greetings greetings: Hello Bob, visit 1 (visits expire at 03:30:00)
}
