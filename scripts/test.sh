#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs it too).
# Needs Go (modules, and staticcheck for the lint step, come from the Go
# module proxy; staticcheck is built once into the cache, as below),
# Python 3.11 with venv
# and Node.js 18 or later with npm (internal/interop and the examples install
# the official StateFun SDKs from PyPI and npm, pinned by the repo's
# requirements.txt, requirements-2.2.txt (the StateFun 2.x SDK) and
# package-lock.json files, into a cache; see the SDK step below), Debian's chromium for the console test
# (scripts/chromium.sh installs it with apt-get when it is missing), and,
# for the last step, a JDK and Maven:
# scripts/kafka.sh fetches Apache Kafka from Maven Central and runs it on
# 127.0.0.1. Everything before that runs on the embedded broker (kfake)
# that the tests start themselves. STATELOOP_SKIP_KAFKA=1 skips the Apache
# Kafka step (for a quick local run; CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files (run gofmt -w on them):"
  echo "$unformatted"
  exit 1
fi

step "go vet"
go vet ./...

# staticcheck, pinned, built once per version and Go release into the cache
# (the first run on a machine downloads and builds it: about 1.5 min, and
# its first analysis of the tree takes about 3 min; then about 10 s after a
# change, 1 s without one). It needs no network once built.
step "staticcheck"
STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools, staticcheck 2026.2.2
tools="${STATELOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stateloop}/tools/staticcheck-$STATICCHECK_VERSION-$(go env GOVERSION)"
if [ ! -x "$tools/staticcheck" ]; then
  GOBIN="$tools" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$tools/staticcheck" ./...
"$tools/staticcheck" -tags integration ./...

# The tests that run functions written with the official StateFun SDKs
# (internal/interop, examples/greeter-python*, examples/shopping-cart-polyglot)
# install them themselves, into the SDK cache (internal/sdkcache;
# ~/.cache/stateloop/interop or $STATELOOP_INTEROP_CACHE): pip install -r of
# the repo's requirements files into virtualenvs, and npm ci of the repo's
# package-lock.json files (internal/interop/js,
# examples/shopping-cart-polyglot/inventory), so the versions are exactly the
# pinned ones. Check here, before the long run, that what they need is there.
step "SDK prerequisites (Python 3.11+ with venv, Node.js 18+ with npm, PyPI and the npm registry)"
need() { echo "$1"; echo "  install: $2"; exit 1; }
command -v python3 >/dev/null || need "python3 not found" "Debian/Ubuntu: apt-get install python3 python3-venv python3-pip"
python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' ||
  need "$(python3 --version 2>&1) without venv, or older than 3.11" "Python 3.11 or later with venv (Debian/Ubuntu: apt-get install python3-venv)"
command -v node >/dev/null && command -v npm >/dev/null ||
  need "node or npm not found" "Node.js 18 or later with npm (Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org/)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || need "node is $(node --version), older than 18" "Node.js 18 or later (https://nodejs.org/)"
echo "$(python3 --version), node $(node --version), npm $(npm --version)"
# The registries are needed only while the cache lacks an installation (the
# first run, or after a pin changes); a failed check is a warning.
timeout 30 npm ping >/dev/null 2>&1 && echo "npm registry $(npm config get registry): reachable" ||
  echo "warning: npm ping failed for $(npm config get registry): npm ci will fail unless the SDK cache has the installations (set npm_config_registry for a mirror)"

step "go test -race (unit, integration on the embedded broker, examples)"
go test -race -count=1 -timeout 30m ./...

# sarama v1.61.1 has a data race in its transactional error path that the
# race detector reports whenever a producer is fenced; these tests are
# built only without -race (see processor/eos_fencing_test.go). The
# 100,000 delayed messages through two kills run here at full size (the
# race pass runs a fifth of them: the detector makes them seven times
# slower).
step "go test (fencing tests and the largest crash test, without the race detector)"
go test -count=1 -timeout 10m -run 'Fencing|TestDelayedMessagesSurviveKill9OfRuntimeAndEmbeddedBroker' ./processor/

step "stateloop-smoke on the embedded broker (3 workers killed 10 times at random, also while they join)"
go run ./cmd/stateloop-smoke --messages 3000 --ids 32 --workers 3 --kills 10 --kill-anytime \
  --session-timeout 1s --max-delay 300ms --timeout 45s

if [ "${STATELOOP_SKIP_KAFKA:-}" = "1" ]; then
  step "Apache Kafka integration tests: skipped (STATELOOP_SKIP_KAFKA=1)"
  exit 0
fi
step "Apache Kafka integration tests (scripts/kafka.sh, go test -tags integration)"
export KAFKA_DIR="${KAFKA_DIR:-$(mktemp -d /tmp/stateloop-kafka-test.XXXXXX)}"
trap 'scripts/kafka.sh stop --clean >/dev/null 2>&1 || true' EXIT
KAFKA_PROPERTIES="group.min.session.timeout.ms=500 log.cleaner.backoff.ms=500" scripts/kafka.sh start | tee "$KAFKA_DIR.start.log"
KAFKA_BROKERS=$(tail -n 1 "$KAFKA_DIR.start.log" | sed -n 's/^KAFKA_BROKERS=//p')
rm -f "$KAFKA_DIR.start.log"
if [ -z "$KAFKA_BROKERS" ]; then
  echo "scripts/kafka.sh start did not print KAFKA_BROKERS=...; see its output above"
  exit 1
fi
export KAFKA_BROKERS
# With the integration tag the processor tests run on this broker: the
# exactly-once, fencing, rebalance, recovery, ordering and dead-letter tests,
# and the Kafka-only ones (kill -9 of the runtime, a frozen zombie, broker
# restarts, Kafka's own tools). The kill -9 test of the embedded broker ran
# above already.
# (The three-broker cluster test runs in its own step, the last.)
go test -tags integration -count=1 -timeout 15m -skip 'EmbeddedBroker|ThreeBrokerCluster' ./processor/
# Kafka's own tools (the jars are there now) against the embedded broker.
go test -tags integration -count=1 -timeout 5m -run 'KafkaTools' ./embedded/
# Reads (state GETs, gokaview views, the HTTP listener) create no topic on a
# Kafka with auto.create.topics.enable=true; the operator's HTTP API edits
# state and replays dead letters.
go test -tags integration -count=1 -timeout 5m -run 'Kafka' ./httpapi/
# The operator's commands on Apache Kafka: state edits racing messages,
# dead-letter replays (once each, also across kill -9 of the replay command
# and of the runtime) and timer cancels.
go test -tags integration -count=1 -timeout 10m -run 'Kafka' ./internal/ops/ ./cmd/stateloop/
# The first start of the greeter (with --http) and of the fraud example on
# topics this broker has never seen (the other app tests ran above).
go test -tags integration -count=1 -timeout 5m -run 'Kafka' ./app/

step "stateloop-smoke on Apache Kafka (2 workers killed 4 times at random)"
go run ./cmd/stateloop-smoke --brokers "$KAFKA_BROKERS" --messages 5000 --ids 64 --workers 2 --kills 4 \
  --kill-anytime --session-timeout 2s --timeout 90s

# The same guarantees on a cluster of three brokers (replication factor 3,
# min.insync.replicas 2; docs/kafka.md): 100,000 records through the cycle
# application on three instances while the broker leading loop partitions
# is killed with SIGKILL and restarted, an instance is killed with SIGKILL
# and restarted, and an instance is frozen with SIGSTOP past its session
# timeout (processor/cluster_integration_test.go). The single broker stops
# first, to leave the three nodes (384 MB of heap each) the machine.
# Measured on this 2-core machine: 1 min 36 s at load average 3 to 9, and
# 2 min 51 s and 2 min 57 s at 13 to 23 (the cluster's start 14-36 s, the
# test 73-146 s, of which the killed node's restart 15-39 s, the stop 5 s);
# budget 8 min (the go test timeout).
step "Apache Kafka cluster of three brokers: exactly once through broker and instance faults"
scripts/kafka.sh stop --clean >/dev/null 2>&1 || true
KAFKA_CLUSTER_DIR=$(mktemp -d /tmp/stateloop-kafka-cluster.XXXXXX)
export KAFKA_CLUSTER_DIR
trap 'KAFKA_DIR="$KAFKA_CLUSTER_DIR" scripts/kafka.sh stop --clean >/dev/null 2>&1 || true; scripts/kafka.sh stop --clean >/dev/null 2>&1 || true' EXIT
KAFKA_DIR="$KAFKA_CLUSTER_DIR" KAFKA_PROPERTIES="group.min.session.timeout.ms=500" scripts/kafka.sh start --nodes 3 |
  tee "$KAFKA_CLUSTER_DIR.start.log"
KAFKA_CLUSTER_BROKERS=$(tail -n 1 "$KAFKA_CLUSTER_DIR.start.log" | sed -n 's/^KAFKA_BROKERS=//p')
rm -f "$KAFKA_CLUSTER_DIR.start.log"
if [ -z "$KAFKA_CLUSTER_BROKERS" ]; then
  echo "scripts/kafka.sh start --nodes 3 did not print KAFKA_BROKERS=...; see its output above"
  exit 1
fi
export KAFKA_CLUSTER_BROKERS
# The test's own lines (the figures of each fault) are shown; all of its
# output (the instances' error logs too) when it fails.
cluster_log="$KAFKA_CLUSTER_DIR.test.log"
if ! go test -tags integration -count=1 -timeout 8m -v -run 'ThreeBrokerCluster' ./processor/ >"$cluster_log" 2>&1; then
  cat "$cluster_log"
  rm -f "$cluster_log"
  exit 1
fi
grep -E '^(--- |ok|[[:space:]]+cluster_integration_test.go)' "$cluster_log" || true
rm -f "$cluster_log"
KAFKA_DIR="$KAFKA_CLUSTER_DIR" scripts/kafka.sh stop --clean
