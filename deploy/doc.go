// Package deploy holds tests of the deployment files.
//
// The files themselves are at the root of the repository: Dockerfile,
// .dockerignore and docker-compose.yml (see docs/docker.md). The tests check
// them statically, without a container engine.
package deploy
