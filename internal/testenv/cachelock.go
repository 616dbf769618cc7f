package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The build cache lock keeps --no-cache builds apart from the tests that
// check which steps come from BuildKit's cache. BuildKit merges a step a
// build asks for into the same step a concurrent --no-cache build is
// running ("!ignorecache merges with ignorecache", solver/jobs.go of
// BuildKit v0.34): the build sees the step run instead of coming from the
// cache, and the records it saves below it are keyed from that run, so the
// next build misses them too. `go test ./...` runs packages in parallel
// (hack/boottest's reproducibility builds run without the cache), so a
// caching test holds the lock shared for its whole sequence of builds
// (CacheSensitive) and every --no-cache build holds it exclusively
// (NoCacheBuild). One file in the temporary directory serves every test
// process of the machine.
var cacheLockFile = filepath.Join(os.TempDir(), "lkbuild-test-build-cache.lock")

func lockCache(t testing.TB, how int) func() {
	t.Helper()
	f, err := os.OpenFile(cacheLockFile, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("build cache lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("build cache lock: %v", err)
	}
	return func() { f.Close() }
}

// CacheSensitive holds the build cache lock shared until t ends: no
// --no-cache build runs meanwhile. A test that calls it must not itself
// build without the cache (it would wait for itself).
func CacheSensitive(t testing.TB) {
	t.Helper()
	t.Cleanup(lockCache(t, unix.LOCK_SH))
}

// NoCacheBuild holds the build cache lock exclusively, for one build
// without the cache; call the function it returns when the build ends.
func NoCacheBuild(t testing.TB) (unlock func()) {
	t.Helper()
	return lockCache(t, unix.LOCK_EX)
}
