// Package release holds the test of the release image: `docker buildx bake`
// of the repository's Dockerfile (docker-bake.hcl) on the local environment,
// and checks of the image it pushes (docs/release.md). It has no code of its
// own.
package release
