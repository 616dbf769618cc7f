//go:build !linux

package cli

import "testing"

// tmpfsDir skips the test: mounting a tmpfs is Linux's.
func tmpfsDir(t *testing.T) string {
	t.Skip("the cross-filesystem case mounts a tmpfs, which needs Linux")
	return ""
}
