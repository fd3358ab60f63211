package sdkcache

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nodeHint says what to install when node or npm is missing.
const nodeHint = "the JavaScript SDK test needs Node.js 18 or later with npm " +
	"(Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org/)"

// Node returns the node program and the node_modules directory of `npm
// ci` run on dir/package.json and dir/package-lock.json (the lockfile pins
// every package, so the installation is the same everywhere), creating it
// on first use under a name of prefix plus a hash of the two files; pkg is
// a package the installation must have (like "apache-flink-statefun").
// Run a script with NODE_PATH set to the directory so that require finds
// the packages. what names the installation in messages. It fails the
// test when node or npm is missing or node is older than 18, saying what
// to install.
func Node(t testing.TB, what, dir, prefix, pkg string) (node, modules string) {
	t.Helper()
	node = LookTool(t, "node", nodeHint)
	npm := LookTool(t, "npm", nodeHint)
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v; %s", node, err, nodeHint)
	}
	version := strings.TrimSpace(string(out))
	var major int
	if _, err := fmt.Sscanf(version, "v%d.", &major); err != nil || major < 18 {
		t.Fatalf("%s is Node.js %s; %s", node, version, nodeHint)
	}
	files := []string{filepath.Join(dir, "package.json"), filepath.Join(dir, "package-lock.json")}
	inst := Install(t, what, prefix+Hash(t, files), func(tmp string) error {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(tmp, filepath.Base(f)), b, 0o644); err != nil {
				return err
			}
		}
		// ci installs exactly the lockfile and fails when package.json
		// disagrees with it; no install scripts run.
		if err := Run(t, "npm", tmp, nil, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"); err != nil {
			return errors.Join(err, errors.New("npm ci failed: the test needs the npm registry (or a mirror set with npm_config_registry)"))
		}
		if _, err := os.Stat(filepath.Join(tmp, "node_modules", pkg, "package.json")); err != nil {
			return errors.Join(err, errors.New("npm ci did not install "+pkg))
		}
		return nil
	})
	return node, filepath.Join(inst, "node_modules")
}
