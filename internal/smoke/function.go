package smoke

import (
	"fmt"
	"strconv"
	"sync/atomic"

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

// Registry returns a registry with the command interpreter.
func Registry() *functions.Registry { return newRegistry(0) }

// newRegistry returns the registry; with duplicateEvery > 0 the
// interpreter is broken on purpose, for the tests: every duplicateEvery-th
// increment it runs adds two.
func newRegistry(duplicateEvery int64) *functions.Registry {
	in := &interpreter{duplicateEvery: duplicateEvery}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: FunctionType,
		Function: functions.Router(
			functions.Handle(SourceCommandType, func(ctx functions.Context, s SourceCommand) error { return in.run(ctx, s.Commands) }),
			functions.Handle(CommandsType, in.run),
		),
		State: []functions.StateSpec{Count},
	})
	return reg
}

// interpreter runs commands, as upstream's command-interpreter-fn.
type interpreter struct {
	duplicateEvery int64
	increments     atomic.Int64
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
			ctx.Send(functions.Address{Type: FunctionType, ID: strconv.Itoa(int(c.Target))}, CommandsType.Of(c.Commands))
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
		case SendAfter, CancelSendAfter, AsyncOperation:
			// TODO(delayed messages): interpret these once the runtime
			// has delayed messages, cancellation and async operations.
			return functions.Permanent(fmt.Errorf("smoke: command %T is not supported by the stateloop runtime yet", c))
		default:
			return functions.Permanent(fmt.Errorf("smoke: unknown command %T", c))
		}
	}
	return nil
}
