//go:build tools

// Package tools pins the BuildKit daemon and client used by `make env`.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
