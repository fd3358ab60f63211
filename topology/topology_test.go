package topology_test

import (
	"strings"
	"testing"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

func TestEscapeTypeKeepsDifferentTypesApart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b functions.TypeName
	}{
		{"dot moves across the slash", "a.b/c", "a/b.c"},
		{"underscore next to the slash", "a_/b", "a/_b"},
		{"doubled underscore against escaped slash", "a__b/c", "a/_b_c"},
		{"dash and dot", "a-b/c", "a/b-c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if ea, eb := topology.EscapeType(tc.a), topology.EscapeType(tc.b); ea == eb {
				t.Errorf("EscapeType(%q) = EscapeType(%q) = %q, want different topic names", tc.a, tc.b, ea)
			}
		})
	}
}

func TestTopicNamesOfAnApplication(t *testing.T) {
	t.Parallel()
	topo := topology.Topology{App: "shop"}
	tests := []struct {
		got, want string
	}{
		{string(topo.LoopTopic()), "shop-loop"},
		{string(topo.DLQTopic()), "shop-dlq"},
		{string(topo.TableTopic("example/person")), "shop-example_.person-table"},
		{string(topo.TableTopic("a.b/c")), "shop-a.b_.c-table"},
		{string(topo.TableTopic("a/b.c")), "shop-a_.b.c-table"},
		{string(topo.TableTopic("my_ns/fn")), "shop-my__ns_.fn-table"},
		{topo.Group("example/person"), "shop-example_.person"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got topic %q, want %q", tc.got, tc.want)
		}
	}
}

func TestUnescapeTypeInvertsEscapeType(t *testing.T) {
	t.Parallel()
	for _, fn := range []functions.TypeName{"example/person", "a_b/c_", "__/__", "a.b-c/d_e.f", "statefun.smoke.e2e/command-interpreter-fn"} {
		got, err := topology.UnescapeType(topology.EscapeType(fn))
		if err != nil || got != fn {
			t.Errorf("UnescapeType(EscapeType(%q)) = %q, %v; want %q", fn, got, err, fn)
		}
	}
	for _, bad := range []string{"a_", "a_xb", "ab"} {
		if _, err := topology.UnescapeType(bad); err == nil {
			t.Errorf("UnescapeType(%q): got nil error, want one", bad)
		}
	}
}

// FuzzEscapeTypeIsInjective checks that escaping then unescaping gives the
// type back, which makes the mapping injective.
func FuzzEscapeTypeIsInjective(f *testing.F) {
	for _, s := range []string{"a/b", "a.b/c", "a_/b", "x__y/z_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fn := functions.TypeName(s)
		if functions.ValidateFunctionType(fn) != nil {
			return
		}
		got, err := topology.UnescapeType(topology.EscapeType(fn))
		if err != nil || got != fn {
			t.Fatalf("UnescapeType(EscapeType(%q)) = %q, %v", s, got, err)
		}
	})
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	topo := topology.Topology{
		App:        "bad app",
		Partitions: -1,
		Functions:  []functions.TypeName{"ok/fn", "ok/fn", "no-slash"},
		Ingresses: []topology.Ingress{
			{Topic: "in", ValueType: "x/y"},                                             // no targets, no router
			{Topic: "in", ValueType: "nope", Targets: []functions.TypeName{"other/fn"}}, // duplicate topic, bad type, unknown target
		},
		Egresses: []topology.Egress{
			{ID: "out/x", Topics: []topology.Topic{"bad app-loop"}},
			{ID: "out/x"},
		},
	}
	err := topo.Validate()
	if err == nil {
		t.Fatal("got nil error, want every problem listed")
	}
	msg := err.Error()
	for _, want := range []string{
		`app "bad app"`, "partitions -1", "functions[1]: duplicate", "functions[2]",
		"ingresses[0]: no targets", "ingresses[1]: topic \"in\" is routed twice", "ingresses[1]: valueType",
		"ingresses[1]: targets[0]: other/fn", "egresses[0].topics[0]", "egresses[1]: duplicate egress", "egresses[1]: no topics",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q; got:\n%s", want, msg)
		}
	}
	if n := len(strings.Split(msg, "\n")); n < 11 {
		t.Errorf("got %d problems, want at least 11:\n%s", n, msg)
	}
}

// Regression: an ingress or egress on the table of a type served through
// a namespace, on the timers, replies, idempotency or dead-letter topics,
// or on Kafka's own __consumer_offsets was accepted, and egress records
// overwrote the application's state.
func TestValidateRejectsTopicsThatAreInternal(t *testing.T) {
	t.Parallel()
	reserved := map[topology.Topic]string{
		"app-loop":            "the loop topic",
		"app-a_.b-table":      "the state table of function type a/b",
		"app-ns_.any-table":   "the state table of function type ns/any",
		"app-dlq":             "the dead-letter topic",
		"app-timers":          "the timers topic",
		"app-replies":         "the replies topic",
		"app-idempotency":     "the idempotency topic",
		"app-positions":       "the positions topic",
		"__consumer_offsets":  "an internal topic of Kafka",
		"__transaction_state": "an internal topic of Kafka",
	}
	for topic, what := range reserved {
		t.Run(string(topic), func(t *testing.T) {
			topo := topology.Topology{
				App:        "app",
				Functions:  []functions.TypeName{"a/b"},
				Namespaces: []string{"ns"},
				Ingresses:  []topology.Ingress{{Topic: topic, ValueType: "x/y", Targets: []functions.TypeName{"a/b"}}},
				Egresses:   []topology.Egress{{ID: "e/x", Topics: []topology.Topic{topic}}},
			}
			err := topo.Validate()
			if err == nil {
				t.Fatalf("got no error, want %s refused for ingress and egress", topic)
			}
			for _, field := range []string{"ingresses[0]", "egresses[0].topics[0]"} {
				if !strings.Contains(err.Error(), field+": topic \""+string(topic)+"\" is "+what) {
					t.Errorf("got %v, want %s refused as %s", err, field, what)
				}
			}
			if got, ok := topo.Reserved(topic); !ok || !strings.HasPrefix(got, what) {
				t.Errorf("Reserved(%s) = %q, %v; want %q", topic, got, ok, what)
			}
		})
	}
	for _, topic := range []topology.Topic{"names", "app-names", "other-loop", "app-table", "_single"} {
		if what, ok := (topology.Topology{App: "app"}).Reserved(topic); ok {
			t.Errorf("Reserved(%s) = %q; want a user topic", topic, what)
		}
	}
}

func TestValidateAcceptsAGoodTopology(t *testing.T) {
	t.Parallel()
	topo := topology.Topology{
		App:       "greeter",
		Functions: []functions.TypeName{"greeter/greet"},
		Ingresses: []topology.Ingress{{Topic: "names", ValueType: "greeter/name", Targets: []functions.TypeName{"greeter/greet"}}},
		Egresses:  []topology.Egress{{ID: "greeter/greetings", Topics: []topology.Topic{"greetings"}}},
	}
	if err := topo.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	if got := topo.PartitionCount(); got != topology.DefaultPartitions {
		t.Errorf("PartitionCount() = %d, want the default %d", got, topology.DefaultPartitions)
	}
	if _, ok := topo.Egress("greeter/greetings"); !ok {
		t.Error("Egress(greeter/greetings) not found")
	}
}

func TestNamespacesMakeEveryTypeInThemAFunction(t *testing.T) {
	t.Parallel()
	topo := topology.Topology{
		App: "shop", Functions: []functions.TypeName{"go/cart"}, Namespaces: []string{"remote"},
		Ingresses: []topology.Ingress{{Topic: "orders", ValueType: "x/order", Targets: []functions.TypeName{"remote/checkout", "go/cart"}}},
	}
	if err := topo.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for fn, want := range map[functions.TypeName]bool{"go/cart": true, "remote/checkout": true, "remote/any": true, "go/other": false, "remotex/a": false} {
		if got := topo.HasFunction(fn); got != want {
			t.Errorf("HasFunction(%s) = %v, want %v", fn, got, want)
		}
	}
	topo.Ingresses[0].Targets = append(topo.Ingresses[0].Targets, "other/fn")
	topo.Namespaces = append(topo.Namespaces, "a/b", "remote")
	err := topo.Validate()
	for _, want := range []string{`targets[2]: other/fn is not a function type`, `namespaces[1]: "a/b" is not a valid function namespace`, `namespaces[2]: duplicate namespace remote`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want an error containing %q", err, want)
		}
	}
}

func TestTableFunctionInvertsTableTopic(t *testing.T) {
	t.Parallel()
	topo := topology.Topology{App: "shop-eu"}
	for _, fn := range []functions.TypeName{"example/person", "a_b/c.d", "x-y/z_"} {
		got, ok := topo.TableFunction(string(topo.TableTopic(fn)))
		if !ok || got != fn {
			t.Errorf("TableFunction(TableTopic(%s)) = %q, %v; want %s, true", fn, got, ok, fn)
		}
	}
	for _, topic := range []string{"shop-eu-loop", "shop-eu-dlq", "shop-example_.person-table", "shop-eu-example_xperson-table", "shop-eu-noslash-table", "orders"} {
		if fn, ok := topo.TableFunction(topic); ok {
			t.Errorf("TableFunction(%q) = %s, true; want false", topic, fn)
		}
	}
}

func TestEgressWithoutTopicsNeedsAnyTopic(t *testing.T) {
	t.Parallel()
	topo := topology.Topology{App: "shop", Functions: []functions.TypeName{"go/cart"}, Egresses: []topology.Egress{{ID: "out/any", AnyTopic: true}, {ID: "out/none"}}}
	err := topo.Validate()
	if err == nil || !strings.Contains(err.Error(), "egresses[1]: no topics") || strings.Contains(err.Error(), "egresses[0]") {
		t.Errorf("Validate() = %v; want only egresses[1] reported for having no topics", err)
	}
}
