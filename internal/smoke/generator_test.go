package smoke

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGeneratorIsSeeded(t *testing.T) {
	t.Parallel()
	cfg := DefaultGeneratorConfig()
	a, _ := NewGenerator(cfg, 99)
	b, _ := NewGenerator(cfg, 99)
	c, _ := NewGenerator(cfg, 100)
	differ := false
	for range 500 {
		x, y, z := a.Next(), b.Next(), c.Next()
		if d := cmp.Diff(x, y); d != "" {
			t.Fatalf("same seed, different commands (-a +b):\n%s", d)
		}
		differ = differ || !cmp.Equal(x, z)
	}
	if !differ {
		t.Errorf("seeds 99 and 100 gave the same 500 commands")
	}
}

// TestGeneratorMakesOnlySupportedCommands: the default generator makes
// increments, sends, delayed messages, cancellation pairs and egress
// records, no async operations (the runtime has none), respects the depth
// and the id range, and makes every kind it may.
func TestGeneratorMakesOnlySupportedCommands(t *testing.T) {
	t.Parallel()
	cfg := DefaultGeneratorConfig()
	cfg.IDs, cfg.Depth = 16, 5
	g, err := NewGenerator(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	maxDepth := 0
	var visit func(cs Commands, depth int)
	visit = func(cs Commands, depth int) {
		maxDepth = max(maxDepth, depth)
		if len(cs) == 0 {
			t.Fatalf("empty command list at depth %d", depth)
		}
		picks := len(cs) // a cancellation pair is one pick
		for _, c := range cs {
			if _, ok := c.(CancelSendAfter); ok {
				picks--
			}
		}
		if picks > cfg.MaxCommandsPerDepth-1 {
			t.Fatalf("%d picks at one level, want at most %d: %+v", picks, cfg.MaxCommandsPerDepth-1, cs)
		}
		for _, c := range cs {
			switch c := c.(type) {
			case Increment:
				kinds["increment"]++
			case SendEgress:
				kinds["send egress"]++
			case Send:
				kinds["send"]++
				if c.Target < 0 || int(c.Target) >= cfg.IDs {
					t.Fatalf("send to id %d, outside 0 to %d", c.Target, cfg.IDs-1)
				}
				visit(c.Commands, depth+1)
			case SendAfter:
				if c.Target < 0 || int(c.Target) >= cfg.IDs {
					t.Fatalf("send after to id %d, outside 0 to %d", c.Target, cfg.IDs-1)
				}
				if c.CancellationToken != "" {
					kinds["cancellation pair"]++ // checked in TestGeneratorCanMakeDelayedAndAsyncCommands
					continue
				}
				kinds["send after"]++
				visit(c.Commands, depth+1)
			case CancelSendAfter:
			default:
				t.Fatalf("generated %T, which the runtime does not support", c)
			}
		}
	}
	for range 5000 {
		sc := g.Next()
		if sc.Target < 0 || int(sc.Target) >= cfg.IDs {
			t.Fatalf("source command to id %d, outside 0 to %d", sc.Target, cfg.IDs-1)
		}
		visit(sc.Commands, 0)
	}
	if maxDepth != cfg.Depth-1 {
		t.Errorf("deepest nesting %d, want %d", maxDepth, cfg.Depth-1)
	}
	for _, k := range []string{"increment", "send", "send egress", "send after", "cancellation pair"} {
		if kinds[k] == 0 {
			t.Errorf("no %s generated in 5000 commands: %v", k, kinds)
		}
	}
}

func TestGeneratorCanMakeDelayedAndAsyncCommands(t *testing.T) {
	t.Parallel()
	cfg := DefaultGeneratorConfig()
	cfg.SendAfter, cfg.SendAfterWithCancellation, cfg.AsyncOperations = true, true, true
	g, err := NewGenerator(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var visit func(cs Commands)
	visit = func(cs Commands) {
		for i, c := range cs {
			switch c := c.(type) {
			case SendAfter:
				if c.CancellationToken != "" {
					seen["cancellable"] = true
					next, ok := cs[i+1].(CancelSendAfter)
					if !ok || next.CancellationToken != c.CancellationToken || next.Target != c.Target || len(c.Commands) > 0 {
						t.Fatalf("cancellable %+v is not empty and followed by its cancellation: %+v", c, cs[i+1])
					}
				} else {
					seen["send after"] = true
				}
				visit(c.Commands)
			case AsyncOperation:
				seen["async"] = true
				visit(c.ResolvedCommands)
			case Send:
				visit(c.Commands)
			}
		}
	}
	for range 2000 {
		visit(g.Next().Commands)
	}
	for _, k := range []string{"cancellable", "send after", "async"} {
		if !seen[k] {
			t.Errorf("no %s command in 2000", k)
		}
	}
}

func TestGeneratorConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*GeneratorConfig)
	}{
		{"no ids", func(c *GeneratorConfig) { c.IDs = 0 }},
		{"no depth", func(c *GeneratorConfig) { c.Depth = 0 }},
		{"too deep", func(c *GeneratorConfig) { c.Depth = MaxDepth + 1 }},
		{"no commands per depth", func(c *GeneratorConfig) { c.MaxCommandsPerDepth = 0 }},
		{"no weights", func(c *GeneratorConfig) { c.Weights = Weights{} }},
		{"negative weight", func(c *GeneratorConfig) { c.Weights.Noop = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultGeneratorConfig()
			tc.edit(&cfg)
			if _, err := NewGenerator(cfg, 1); err == nil {
				t.Errorf("no error")
			}
		})
	}
}

func TestTrackerFollowsTheCommandTree(t *testing.T) {
	t.Parallel()
	tr := NewTracker(5)
	tr.Track(SourceCommand{Target: 1, Commands: Commands{
		Increment{},
		Send{Target: 2, Commands: Commands{Increment{}, Increment{}, Send{Target: 1, Commands: Commands{Increment{}}}}},
		SendAfter{Target: 3, Commands: Commands{Increment{}}},
		AsyncOperation{Failure: true, ResolvedCommands: Commands{Increment{}, Send{Target: 4, Commands: Commands{SendEgress{}}}}},
		SendAfter{Target: 4, CancellationToken: "t"},
		CancelSendAfter{Target: 4, CancellationToken: "t"},
		SendEgress{},
		Verify{Expected: 100},
		nil,
		Send{Target: 99, Commands: Commands{Increment{}}}, // outside the tracker's ids
	}})
	if d := cmp.Diff([]int64{0, 3, 2, 1, 0}, tr.Snapshot()); d != "" {
		t.Errorf("expected counts (-want +got):\n%s", d)
	}
	if tr.Total() != 6 || tr.Expected(2) != 2 {
		t.Errorf("total %d, id 2 %d; want 6 and 2", tr.Total(), tr.Expected(2))
	}
	// the longest chains: Send, Send to id 1 (2 messages); SendAfter to
	// id 3 (1 delayed); the cancellation pair leads to no increment
	if got := tr.Longest(); got != (Chain{Messages: 2, Delayed: 1}) {
		t.Errorf("longest chain %+v, want 2 messages and 1 delayed", got)
	}
	tr.Track(SourceCommand{Commands: Commands{
		SendAfter{Target: 1, Commands: Commands{Send{Target: 2, Commands: Commands{SendAfter{Target: 3, Commands: Commands{
			SendAfter{Target: 4, Commands: Commands{SendEgress{}}}, // leads to no increment
			Increment{},
		}}}}}},
	}})
	if got := tr.Longest(); got != (Chain{Messages: 3, Delayed: 2}) {
		t.Errorf("longest chain %+v, want 3 messages and 2 delayed", got)
	}
}

func TestKillPlanSpreadsKills(t *testing.T) {
	t.Parallel()
	g, _ := NewGenerator(DefaultGeneratorConfig(), 1)
	for _, tc := range []struct{ messages, kills int }{{3000, 2}, {10, 10}, {5, 8}, {100, 0}} {
		plan := killPlan(g.rng, tc.messages, tc.kills)
		if len(plan) != tc.kills {
			t.Fatalf("%+v: %d kills planned", tc, len(plan))
		}
		for k, at := range plan {
			lo, hi := k*tc.messages/tc.kills, (k+1)*tc.messages/tc.kills
			if at < lo || at > max(lo, hi-1) {
				t.Errorf("%+v: kill %d after %d commands, want in [%d, %d)", tc, k, at, lo, hi)
			}
		}
	}
}
