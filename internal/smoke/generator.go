package smoke

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
)

// MaxDepth is the largest command depth a [Generator] accepts.
const MaxDepth = 30

// Weights are the relative frequencies of the command generators, as in
// upstream's CommandGenerator (they need not add up to 1). A generator that
// is switched off in [GeneratorConfig] is never picked, whatever its
// weight.
type Weights struct {
	Increment                 float64
	Send                      float64
	SendAfter                 float64
	SendAfterWithCancellation float64
	AsyncOperation            float64
	Noop                      float64
	SendEgress                float64
}

// DefaultWeights returns upstream's defaults: increment 0.4, send 0.9,
// send after 0.1, send after with cancellation 0.1, async operation 0.1,
// noop 0.2, send egress 0.03.
func DefaultWeights() Weights {
	return Weights{
		Increment:                 0.4,
		Send:                      0.9,
		SendAfter:                 0.1,
		SendAfterWithCancellation: 0.1,
		AsyncOperation:            0.1,
		Noop:                      0.2,
		SendEgress:                0.03,
	}
}

// GeneratorConfig configures a [Generator].
type GeneratorConfig struct {
	// IDs is the number of function ids, "0" to "IDs-1".
	IDs int
	// Depth bounds the nesting of generated commands: a source command
	// gets a depth uniform in [0, Depth) (upstream's commandDepth).
	Depth int
	// MaxCommandsPerDepth bounds the commands picked per level: uniform in
	// [0, MaxCommandsPerDepth) (upstream's maxCommandsPerDepth).
	MaxCommandsPerDepth int
	// Weights of the generators.
	Weights Weights

	// SendAfter generates delayed messages: a SendAfter to a random id
	// carrying commands one level lower (upstream's SendAfterGen, which
	// upstream always generates).
	SendAfter bool
	// SendAfterWithCancellation generates a SendAfter with a random
	// cancellation token and no commands, followed by its CancelSendAfter
	// from the same function (upstream's SendAfterCancellationGen, behind
	// delayCancellationOpSupported: off by default, on in the embedded smoke
	// test only).
	SendAfterWithCancellation bool
	// AsyncOperations generates upstream's async operations. The stateloop
	// runtime has none: keep this off (Config.Validate refuses it). The
	// smoke function sends such a command to the dead-letter topic, and the
	// run would then fail with a loss.
	//
	// TODO(async operations): interpret them in function.go once the
	// runtime has them.
	AsyncOperations bool
}

// DefaultGeneratorConfig returns the generator of the driver: 128 ids,
// depth 10, up to 2 commands per level, upstream's weights, every command
// the runtime supports: delayed messages, and their cancellation too
// (which upstream's default leaves off), to exercise stateloop's timers;
// async operations off.
func DefaultGeneratorConfig() GeneratorConfig {
	return GeneratorConfig{IDs: 128, Depth: 10, MaxCommandsPerDepth: 3, Weights: DefaultWeights(),
		SendAfter: true, SendAfterWithCancellation: true}
}

// Validate reports every problem of the configuration at once.
func (c GeneratorConfig) Validate() error {
	var errs []error
	if c.IDs <= 0 {
		errs = append(errs, fmt.Errorf("smoke: ids %d: must be positive", c.IDs))
	}
	if c.Depth <= 0 || c.Depth > MaxDepth {
		errs = append(errs, fmt.Errorf("smoke: depth %d: want 1 to %d", c.Depth, MaxDepth))
	}
	if c.MaxCommandsPerDepth <= 0 {
		errs = append(errs, fmt.Errorf("smoke: commands per depth %d: must be positive", c.MaxCommandsPerDepth))
	}
	if len(c.generators()) == 0 {
		errs = append(errs, errors.New("smoke: weights: no generator has a positive weight"))
	}
	for _, w := range []float64{c.Weights.Increment, c.Weights.Send, c.Weights.SendAfter, c.Weights.SendAfterWithCancellation,
		c.Weights.AsyncOperation, c.Weights.Noop, c.Weights.SendEgress} {
		if w < 0 {
			errs = append(errs, fmt.Errorf("smoke: weights: %v is negative", w))
			break
		}
	}
	return errors.Join(errs...)
}

type genKind int

const (
	genIncrement genKind = iota
	genSend
	genSendAfter
	genSendAfterWithCancellation
	genAsyncOperation
	genNoop
	genSendEgress
)

type weighted struct {
	kind   genKind
	weight float64
}

// generators returns the enabled generators with a positive weight, in a
// fixed order (the order matters for reproducibility).
func (c GeneratorConfig) generators() []weighted {
	w := c.Weights
	all := []struct {
		kind    genKind
		weight  float64
		enabled bool
	}{
		{genIncrement, w.Increment, true},
		{genSend, w.Send, true},
		{genSendAfter, w.SendAfter, c.SendAfter},
		{genSendAfterWithCancellation, w.SendAfterWithCancellation, c.SendAfterWithCancellation},
		{genAsyncOperation, w.AsyncOperation, c.AsyncOperations},
		{genNoop, w.Noop, true},
		{genSendEgress, w.SendEgress, true},
	}
	var out []weighted
	for _, g := range all {
		if g.enabled && g.weight > 0 {
			out = append(out, weighted{g.kind, g.weight})
		}
	}
	return out
}

// Generator makes random source commands the way upstream's
// CommandGenerator does; the same seed gives the same commands (with Go's
// PCG, so not the same as upstream's for the same seed).
//
// A Generator is not safe for concurrent use.
type Generator struct {
	cfg   GeneratorConfig
	rng   *rand.Rand
	gens  []weighted
	total float64
}

// NewGenerator returns a generator seeded with seed. It returns the error
// of [GeneratorConfig.Validate].
func NewGenerator(cfg GeneratorConfig, seed int64) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(uint64(seed), 0x5310e)), gens: cfg.generators()}
	for _, w := range g.gens {
		g.total += w.weight
	}
	return g, nil
}

// Next returns the next source command: a random target, a random depth d
// in [0, Depth) and the commands of that depth.
func (g *Generator) Next() SourceCommand {
	depth := g.rng.IntN(g.cfg.Depth)
	return SourceCommand{Target: g.target(), Commands: g.commands(depth)}
}

func (g *Generator) target() int32 { return int32(g.rng.IntN(g.cfg.IDs)) }

// commands returns the commands of one level: an increment at depth 0,
// else up to MaxCommandsPerDepth-1 random picks (an increment if that gave
// nothing).
func (g *Generator) commands(depth int) Commands {
	if depth <= 0 {
		return Commands{Increment{}}
	}
	var cs Commands
	for n := g.rng.IntN(g.cfg.MaxCommandsPerDepth); n > 0; n-- {
		cs = g.generate(cs, g.pick(), depth)
	}
	if len(cs) == 0 {
		cs = Commands{Increment{}}
	}
	return cs
}

// pick draws a generator by weight.
func (g *Generator) pick() genKind {
	x := g.rng.Float64() * g.total
	for _, w := range g.gens {
		if x < w.weight {
			return w.kind
		}
		x -= w.weight
	}
	return g.gens[len(g.gens)-1].kind
}

func (g *Generator) generate(cs Commands, kind genKind, depth int) Commands {
	switch kind {
	case genIncrement:
		return append(cs, Increment{})
	case genSend:
		return append(cs, Send{Target: g.target(), Commands: g.commands(depth - 1)})
	case genSendAfter:
		return append(cs, SendAfter{Target: g.target(), Commands: g.commands(depth - 1)})
	case genSendAfterWithCancellation:
		// the delayed message carries no commands, so the counts are the
		// same whether it is cancelled in time or not
		target, token := g.target(), g.token()
		return append(cs, SendAfter{Target: target, CancellationToken: token}, CancelSendAfter{Target: target, CancellationToken: token})
	case genAsyncOperation:
		return append(cs, AsyncOperation{Failure: g.rng.IntN(2) == 0, ResolvedCommands: g.commands(depth - 1)})
	case genSendEgress:
		return append(cs, SendEgress{})
	default: // genNoop
		return cs
	}
}

// token returns a random cancellation token.
func (g *Generator) token() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return hex.EncodeToString(b[:])
}
