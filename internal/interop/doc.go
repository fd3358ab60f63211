// Package interop holds stateloop's interoperability tests with the
// official StateFun SDKs for Python (apache-flink-statefun 3.3.0 on PyPI)
// and JavaScript (apache-flink-statefun 3.3.0 on npm), and with the
// StateFun 2.x Python SDK (apache-flink-statefun 2.2.2) from StateFun 2.x
// module files (statefun2_test.go). It has no code of its own: the
// functions are in python/server.py, python/server_2x.py and js/server.js, and the
// tests in *_test.go install the SDKs, run those services as child
// processes and run an application from a module.yaml against them. The
// delayed-message scenario (delayed_test.go) also runs with the official
// Go SDK, served in-process (gosdk_delayed_test.go), and so does the
// tracing test (trace_test.go): one trace from an ingress record through a
// Go SDK function and a Go function to its egress record.
//
// # Running
//
//	go test ./internal/interop/
//
// The tests need python3 (with venv and pip) and npm, and on their first
// run the PyPI and npm registries: they install the SDKs from
// python/requirements.txt, python/requirements-2.2.txt (a virtualenv of
// its own: both SDKs are the package apache-flink-statefun) and
// js/package-lock.json into the user's cache
// directory (os.UserCacheDir()/stateloop/interop, or
// $STATELOOP_INTEROP_CACHE), keyed by a hash of those files, and reuse
// them afterwards. See docs/interop.md.
package interop
