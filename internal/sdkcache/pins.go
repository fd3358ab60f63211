package sdkcache

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// RequirementPins returns the lines of a pip requirements file that are
// neither blank nor comments, trimmed and sorted: two files with the same
// pins in another order or with other comments give the same list.
func RequirementPins(t testing.TB, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// LockedPackages returns the packages an npm package-lock.json (lockfile
// version 2 or 3) installs, as "version integrity" by path
// ("node_modules/<name>"), leaving out the root package: two lockfiles of
// different projects that install the same packages give the same map.
func LockedPackages(t testing.TB, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(lock.Packages) == 0 {
		t.Fatalf("%s has no \"packages\": want a lockfile of version 2 or later (npm 7 or later writes them)", file)
	}
	out := map[string]string{}
	for name, p := range lock.Packages {
		if name != "" {
			out[name] = p.Version + " " + p.Integrity
		}
	}
	return out
}
