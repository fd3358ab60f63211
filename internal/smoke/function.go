package smoke

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// The names of the smoke application, upstream's.
const (
	// FunctionType is the one function type: it interprets commands.
	FunctionType functions.TypeName = "statefun.smoke.e2e/command-interpreter-fn"
	// DiscardEgress receives a record for every [SendEgress].
	DiscardEgress functions.TypeName = "statefun.smoke.e2e/discard-sink"
	// VerificationEgress receives a [VerificationResult] for every
	// [Verify].
	VerificationEgress functions.TypeName = "statefun.smoke.e2e/verification-sink"
)

// The message and state types of the smoke application.
var (
	// SourceCommandType is the type of the records of the commands topic.
	SourceCommandType = functions.NewType[SourceCommand]("statefun.smoke.e2e/source-command", sourceCommandCodec{})
	// CommandsType is the type of the messages functions send each other.
	CommandsType = functions.NewType[Commands]("statefun.smoke.e2e/commands", commandsCodec{})
	// VerificationResultType is the type of a verification result.
	VerificationResultType = functions.NewType[VerificationResult]("statefun.smoke.e2e/verification-result", verificationResultCodec{})
	// Count is the state of every id: how often it was incremented.
	Count = functions.NewState("state", functions.LongType)
)

// discarded is the value of every record on the discard egress, as in the
// upstream Go interpreter.
const discarded = "discarded-message"

// CommandsTopic returns the ingress topic of application app: key = the
// target id, value = a [SourceCommand].
func CommandsTopic(app string) topology.Topic { return topology.Topic(app + "-commands") }

// DiscardTopic returns the topic of the discard egress.
func DiscardTopic(app string) topology.Topic { return topology.Topic(app + "-discard") }

// VerificationTopic returns the topic of the verification egress: key =
// the id, value = a [VerificationResult].
func VerificationTopic(app string) topology.Topic { return topology.Topic(app + "-verification") }

// Topology returns the smoke application named app with the given
// partition count.
func Topology(app string, partitions int32) topology.Topology {
	return topology.Topology{
		App:        app,
		Partitions: partitions,
		Functions:  []functions.TypeName{FunctionType},
		Ingresses: []topology.Ingress{{
			Topic:     CommandsTopic(app),
			ValueType: SourceCommandType.Name(),
			Targets:   []functions.TypeName{FunctionType},
		}},
		Egresses: []topology.Egress{
			{ID: DiscardEgress, Topics: []topology.Topic{DiscardTopic(app)}},
			{ID: VerificationEgress, Topics: []topology.Topic{VerificationTopic(app)}},
		},
	}
}

// Registry returns a registry with the command interpreter. Each delayed
// message it sends waits a random delay from 0 to maxDelay.
func Registry(maxDelay time.Duration) *functions.Registry {
	return newRegistry(maxDelay, faults{})
}

// faults break the interpreter on purpose, for the tests. With
// duplicateEvery > 0, every duplicateEvery-th increment it runs adds two.
// With duplicateDelayedEvery > 0, every duplicateDelayedEvery-th SendAfter
// whose commands lead to an increment is sent twice, the copy with the
// longest delay: as if the runtime delivered a delayed message twice, late.
type faults struct {
	duplicateEvery        int64
	duplicateDelayedEvery int64
}

// newRegistry returns the registry of an interpreter with the faults f.
func newRegistry(maxDelay time.Duration, f faults) *functions.Registry {
	in := &interpreter{maxDelay: maxDelay, faults: f}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: FunctionType,
		Function: functions.Router(
			functions.Handle(SourceCommandType, func(ctx functions.Context, s SourceCommand) error { return in.run(ctx, s.Commands) }),
			functions.Handle(CommandsType, in.run),
		),
		State:    []functions.StateSpec{Count},
		Egresses: []functions.TypeName{DiscardEgress, VerificationEgress},
	})
	return reg
}

// interpreter runs commands, as upstream's command-interpreter-fn.
type interpreter struct {
	// maxDelay is the longest delay of a delayed message.
	maxDelay time.Duration
	faults
	// increments and delayed count what the faults count
	increments, delayed atomic.Int64
}

func (in *interpreter) run(ctx functions.Context, cs Commands) error {
	self := ctx.Self()
	for _, c := range cs {
		switch c := c.(type) {
		case nil:
			// a command with no case set does nothing, as upstream
		case Increment:
			n, _ := Count.Get(ctx)
			n++
			if in.duplicateEvery > 0 && in.increments.Add(1)%in.duplicateEvery == 0 {
				n++ // the test fault: count this increment twice
			}
			Count.Set(ctx, n)
		case Send:
			ctx.Send(address(c.Target), CommandsType.Of(c.Commands))
		case SendAfter:
			to, msg := address(c.Target), CommandsType.Of(c.Commands)
			if c.CancellationToken == "" {
				ctx.SendAfter(in.delay(), to, msg)
			} else {
				ctx.SendAfterWithToken(in.delay(), c.CancellationToken, to, msg)
			}
			if in.duplicateDelayedEvery > 0 && leadsToIncrement(c.Commands) && in.delayed.Add(1)%in.duplicateDelayedEvery == 0 {
				ctx.SendAfter(in.maxDelay, to, msg) // the test fault: deliver it twice
			}
		case CancelSendAfter:
			// The token belongs to this function, whatever the target
			// (as upstream's context.cancelDelayedMessage(token)). An
			// empty token names no message: nothing to cancel.
			if c.CancellationToken != "" {
				ctx.CancelDelayed(c.CancellationToken)
			}
		case SendEgress:
			ctx.SendEgress(DiscardEgress, functions.KafkaMessage("", self.ID, []byte(discarded)))
		case Verify:
			id, err := strconv.ParseInt(self.ID, 10, 32)
			if err != nil {
				return functions.Permanent(fmt.Errorf("smoke: verify at id %q: ids of the smoke application are numbers", self.ID))
			}
			actual, _ := Count.Get(ctx)
			r := VerificationResult{ID: int32(id), Expected: c.Expected, Actual: actual}
			ctx.SendEgress(VerificationEgress, functions.KafkaMessage("", self.ID, r.Marshal()))
		case AsyncOperation:
			// TODO(async operations): interpret them once the runtime has
			// asynchronous operations.
			return functions.Permanent(fmt.Errorf("smoke: command %T is not supported by the stateloop runtime yet", c))
		default:
			return functions.Permanent(fmt.Errorf("smoke: unknown command %T", c))
		}
	}
	return nil
}

// address returns the address of the function with id target.
func address(target int32) functions.Address {
	return functions.Address{Type: FunctionType, ID: strconv.Itoa(int(target))}
}

// delay returns a random delay from 0 to maxDelay. Upstream's interpreters
// use a fixed one (Go 0, Java 1 ms, JS 1 s); a random one also makes
// delayed messages overtake each other and the messages sent without
// delay.
func (in *interpreter) delay() time.Duration {
	if in.maxDelay <= 0 {
		return 0
	}
	return rand.N(in.maxDelay + 1)
}

// leadsToIncrement reports whether cs, run anywhere, leads to an increment.
func leadsToIncrement(cs Commands) bool {
	found := false
	walk(0, cs, Chain{}, func(int32, Chain) { found = true })
	return found
}
