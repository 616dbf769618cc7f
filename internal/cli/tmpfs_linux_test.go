package cli

import (
	"path/filepath"
	"syscall"
	"testing"
)

// tmpfsDir mounts a tmpfs (another filesystem than t.TempDir's) on a new
// directory, unmounted when the test ends, or skips the test.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): the cross-filesystem case needs root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(filepath.Dir(dir), &b) != nil || a.Dev == b.Dev {
		t.Skip("the tmpfs is not another filesystem")
	}
	return dir
}
