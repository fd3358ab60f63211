package interop_test

import (
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

// installJavaScript returns the node program and the node_modules
// directory of `npm ci` run on js/package.json and js/package-lock.json.
func installJavaScript(t *testing.T) (node, modules string) {
	t.Helper()
	return sdkcache.Node(t, "JavaScript SDK", "js", "js-", "apache-flink-statefun")
}
