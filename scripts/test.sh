#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs it too).
# Needs only Go: modules come from the Go module proxy, Kafka is the
# embedded broker (kfake) started by the tests themselves.
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

step "go test -race (unit, integration on the embedded broker, examples)"
go test -race -count=1 -timeout 30m ./...

# sarama v1.61.1 has a data race in its transactional error path that the
# race detector reports whenever a producer is fenced; these tests are
# built only without -race (see processor/eos_fencing_test.go).
step "go test (fencing tests, without the race detector)"
go test -count=1 -timeout 10m -run 'Fencing' ./processor/
