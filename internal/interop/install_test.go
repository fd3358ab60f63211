package interop_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stateloop/stateloop/internal/sdkcache"
)

// installPython returns the python interpreter of a virtualenv that has
// the packages of python/requirements.txt (the StateFun Python SDK 3.3).
func installPython(t *testing.T) string {
	t.Helper()
	return sdkcache.Python(t, "Python SDK", filepath.Join("python", "requirements.txt"), "py-",
		"import statefun, aiohttp, google.protobuf as p; print('statefun SDK with protobuf', p.__version__, 'and aiohttp', aiohttp.__version__)")
}

// installPython2 is installPython for python/requirements-2.2.txt: the
// StateFun Python SDK 2.2.2, Flask and aiohttp. The SDKs are one PyPI
// package in two versions, so each has a virtualenv of its own.
func installPython2(t *testing.T) string {
	t.Helper()
	return sdkcache.Python(t, "Python SDK 2.2", filepath.Join("python", "requirements-2.2.txt"), "py22-",
		"import statefun, flask, aiohttp, google.protobuf as p; from statefun import AsyncRequestReplyHandler; print('statefun SDK 2.2 with protobuf', p.__version__, 'flask', flask.__version__, 'and aiohttp', aiohttp.__version__)")
}

// installJavaScript returns the node_modules directory of `npm ci` run on
// js/package.json and js/package-lock.json.
func installJavaScript(t *testing.T) string {
	t.Helper()
	const hint = "the JavaScript SDK test needs Node.js 18 or later with npm (Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org/)"
	sdkcache.LookTool(t, "node", hint)
	npm := sdkcache.LookTool(t, "npm", hint)
	files := []string{filepath.Join("js", "package.json"), filepath.Join("js", "package-lock.json")}
	dir := sdkcache.Install(t, "JavaScript SDK", "js-"+sdkcache.Hash(t, files), func(tmp string) error {
		for _, f := range files {
			if err := copyFile(f, filepath.Join(tmp, filepath.Base(f))); err != nil {
				return err
			}
		}
		if err := sdkcache.Run(t, "npm", tmp, nil, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"); err != nil {
			return errors.Join(err, errors.New("npm ci failed: the test needs the npm registry (or a mirror set with npm_config_registry)"))
		}
		if _, err := os.Stat(filepath.Join(tmp, "node_modules", "apache-flink-statefun", "package.json")); err != nil {
			return errors.Join(err, errors.New("npm ci did not install apache-flink-statefun"))
		}
		return nil
	})
	return filepath.Join(dir, "node_modules")
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
