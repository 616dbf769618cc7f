//go:build tools

// Package tools pins the docker-buildx plugin used by `make env`.
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
)
