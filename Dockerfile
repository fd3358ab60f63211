# The stateloop image: one static binary on a distroless base, running as a
# non-root user.
#
#   docker build -t stateloop .
#   docker run --rm stateloop --help
#
# By default it runs the greeter with an embedded broker inside the container
# (only reachable from inside it). Against a Kafka cluster pass --brokers, or
# set STATELOOP_BROKERS, which is the default of --brokers:
#
#   docker run -e STATELOOP_BROKERS=kafka:9092 stateloop
#
# docker-compose.yml builds this image and runs it next to Kafka; see
# docs/docker.md. deploy/dockerfile_test.go checks this file.

# ---- build stage ------------------------------------------------------------
# The Go version follows the go directive of go.mod.
FROM golang:1.26 AS builder
WORKDIR /src
# The modules first, in a layer of their own that is rebuilt only when go.mod
# or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary that needs no libc, as distroless/static has
# none.
RUN CGO_ENABLED=0 go build -trimpath -o /stateloop ./cmd/stateloop
# The data directory, made here because the final image has no shell; it is
# copied with the non-root user as its owner, so that a new volume mounted on
# it is writable.
RUN mkdir /data

# ---- final stage ------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /stateloop /stateloop
COPY --from=builder --chown=65532:65532 /data /data
# nonroot of the distroless image
USER 65532:65532
WORKDIR /data
# The local state stores and the instance id (and, with the embedded broker,
# its data). The state itself lives in Kafka: a new, empty /data is rebuilt
# from Kafka, but a kept one makes restarts faster and keeps the instance id.
VOLUME /data
ENTRYPOINT ["/stateloop"]
CMD ["run", "greeter", "--data-dir", "/data"]
