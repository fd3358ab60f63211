package module_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology/module"
)

// TestMergeRunsStateFun2And3FilesTogether: a version "2.0" file and a
// kind/spec file make one module; each endpoint keeps the protocol of its
// file, and an ingress target of one file is served by an endpoint of the
// other.
func TestMergeRunsStateFun2And3FilesTogether(t *testing.T) {
	t.Parallel()
	v2, err := module.Parse("old.yaml", []byte(`version: "2.0"
module:
  meta: {type: remote}
  spec:
    functions:
      - function:
          meta: {kind: http, type: legacy/greeter}
          spec:
            endpoint: http://python2:8000/statefun
            states: [{name: seen_count}]
    ingresses:
      - ingress:
          meta: {type: statefun.kafka.io/routable-protobuf-ingress, id: legacy/names}
          spec:
            topics:
              - topic: names
                typeUrl: type.googleapis.com/example.GreetRequest
                targets: [legacy/greeter, modern/counter]
`))
	if err != nil {
		t.Fatal(err)
	}
	v3, err := module.Parse("new.yaml", []byte(`kind: io.statefun.endpoints.v2/http
spec:
  functions: modern/*
  urlPathTemplate: http://python3:8000/{function.name}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := module.Merge(v2, v3)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if m.File != "old.yaml, new.yaml" || m.Version != "" || len(m.Endpoints) != 2 || len(m.Ingresses) != 1 {
		t.Errorf("merged module: file %q, version %q, %d endpoints, %d ingresses", m.File, m.Version, len(m.Endpoints), len(m.Ingresses))
	}
	for fn, want := range map[functions.TypeName]module.Protocol{"legacy/greeter": module.Protocol2, "modern/counter": module.Protocol3} {
		if e, ok := m.EndpointFor(fn); !ok || e.Protocol != want {
			t.Errorf("%s: endpoint %+v, want one with protocol %v", fn, e, want)
		}
	}
	if u := m.UnboundTargets(); len(u) != 0 {
		t.Errorf("UnboundTargets = %v, want none: modern/counter is served by new.yaml", u)
	}
	if one, err := module.Merge(v2); one != v2 || err != nil {
		t.Errorf("Merge of one module = %p, %v; want it as it is", one, err)
	}
}

// TestMergeReportsConflicts: what two files declare twice is listed, each
// at its second place with its first.
func TestMergeReportsConflicts(t *testing.T) {
	t.Parallel()
	a, err := module.ParseFile(filepath.Join("testdata", "statefun-2.0.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := module.Parse("b.yaml", []byte(`kind: io.statefun.endpoints.v2/http
spec:
  functions: example/greeter
  urlPathTemplate: http://x/
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  topics:
    - topic: names
      valueType: a/b
      targets: [example/greeter]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = module.Merge(a, b)
	var perr *module.Error
	if !errors.As(err, &perr) {
		t.Fatalf("Merge: %v, want *module.Error", err)
	}
	var got []string
	for _, p := range perr.Problems {
		got = append(got, p.String())
	}
	want := []string{
		`b.yaml:3:3 (document 1): function type example/greeter is bound in two module files; bind it once (first at testdata/statefun-2.0.yaml:17:13)`,
		`b.yaml:8:3 (document 2): ingress id example/names is used in two module files; ids must be unique (first at testdata/statefun-2.0.yaml:44:13)`,
		`b.yaml:10:7 (document 2): topic names is read by ingresses of two module files; stateloop routes each topic once (first at testdata/statefun-2.0.yaml:49:17)`,
		`b.yaml:16:3 (document 3): egress id example/greets is used in two module files; ids must be unique (first at testdata/statefun-2.0.yaml:60:13)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
