// docker buildx bake: the frontend image for release.
//   docker buildx bake --push frontend
variable "TAG" {
  default = "v0.1"
}

variable "REPO" {
  default = "docker.io/lkbuild/lkbuild"
}

group "default" {
  targets = ["frontend"]
}

target "frontend" {
  context    = "."
  dockerfile = "Dockerfile"
  platforms  = ["linux/amd64", "linux/arm64"]
  tags       = ["${REPO}:${TAG}"]
}
