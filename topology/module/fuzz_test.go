package module_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stateloop/stateloop/topology/module"
)

// FuzzParse checks that Parse never panics and returns either a module or
// an *Error with at least one problem.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "---", "kind:", "spec: [", "kind: io.statefun.kafka.v1/ingress\nspec: &a\n  topics: *a\n",
		"version: \"3.0\"\nmodule: {meta: {type: remote}, spec: {endpoints: [{endpoint: {meta: {kind: http}, spec: {}}}]}}",
		"kind: io.statefun.endpoints.v2/http\nspec: {functions: a/*, urlPathTemplate: 'http://[::1'}",
		"a: &a [*a]", "<<: {a: 1}", "? [a]\n: b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := module.Parse(filepath.Join("testdata", "module.yaml"), data)
		if err != nil {
			var perr *module.Error
			if !errors.As(err, &perr) || len(perr.Problems) == 0 {
				t.Fatalf("Parse returned %T %v, want *module.Error with problems", err, err)
			}
			_ = perr.Error()
			return
		}
		if m == nil {
			t.Fatal("Parse returned nil, nil")
		}
	})
}
