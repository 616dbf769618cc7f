//go:build tools

// Package tools pins the distribution registry used by `make env`.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
