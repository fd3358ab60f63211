// Package deploy holds tests of the deployment files.
//
// The files themselves are at the root of the repository: Dockerfile,
// .dockerignore and docker-compose.yml (see docs/docker.md), and, for the
// Python greeter that the compose file runs, examples/greeter-python
// (Dockerfile, .dockerignore, module.yaml). The tests check them statically,
// without a container engine, and run the stateloop command lines of the
// compose file up to the point where they connect to Kafka.
package deploy
