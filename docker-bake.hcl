// docker buildx bake: the lkbuild frontend image (the Dockerfile), for
// linux/amd64 and linux/arm64. A release (docs/release.md):
//   TAG=v0.2.0 REVISION=$(git rev-parse HEAD) docker buildx bake --push
// hack/images.sh builds the same target for the tests, with --set for the
// tag, the platforms and the output.

// The image's repository and tag.
variable "REPO" {
  default = "docker.io/lkbuild/lkbuild"
}

variable "TAG" {
  default = "v0.1"
}

// The version the image reports (label org.opencontainers.image.version):
// the tag unless set.
variable "VERSION" {
  default = TAG
}

// The commit the image is built from (label
// org.opencontainers.image.revision), e.g. $(git rev-parse HEAD).
variable "REVISION" {
  default = ""
}

group "default" {
  targets = ["frontend"]
}

target "frontend" {
  context    = "."
  dockerfile = "Dockerfile"
  platforms  = ["linux/amd64", "linux/arm64"]
  tags       = ["${REPO}:${TAG}"]
  args = {
    VERSION  = VERSION
    REVISION = REVISION
  }
}
