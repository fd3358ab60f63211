// Package interop holds stateloop's interoperability tests with the
// official StateFun SDKs for Python (apache-flink-statefun 3.3.0 on PyPI)
// and JavaScript (apache-flink-statefun 3.3.0 on npm). It has no code of
// its own: the functions are in python/server.py and js/server.js, and the
// tests in *_test.go install the SDKs, run those services as child
// processes and run an application from a module.yaml against them. The
// delayed-message scenario (delayed_test.go) also runs with the official
// Go SDK, served in-process (gosdk_delayed_test.go).
//
// # Running
//
//	go test ./internal/interop/
//
// The tests need python3 (with venv and pip) and npm, and on their first
// run the PyPI and npm registries: they install the SDKs from
// python/requirements.txt and js/package-lock.json into the user's cache
// directory (os.UserCacheDir()/stateloop/interop, or
// $STATELOOP_INTEROP_CACHE), keyed by a hash of those files, and reuse
// them afterwards. See docs/interop.md.
package interop
