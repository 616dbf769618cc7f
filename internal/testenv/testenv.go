// Package testenv gives integration and boot tests the local environment
// that `make env` and `make images` set up: the BuildKit address, the helper
// (frontend) image and the repository root. Tests that need it are skipped
// with a clear message under -short or when the environment is missing,
// unless LKBUILD_INTEGRATION=1 (set by `make test`) makes that a failure.
package testenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/envfile"
)

// Env is the environment of a test run.
type Env struct {
	Addr     string // BUILDKIT_HOST
	Helper   string // LKBUILD_FRONTEND
	Registry string // LKBUILD_REGISTRY
	Root     string // repository root
}

// Required reports whether missing parts must fail tests instead of
// skipping them.
func Required() bool { return os.Getenv("LKBUILD_INTEGRATION") == "1" }

// Integration returns the environment or skips (or fails) the test.
func Integration(t testing.TB) Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs BuildKit, the local registry and images (make env images); skipped under -short")
	}
	root := Root(t)
	env := envfile.Read(filepath.Join(root, ".lkbuild", "env"))
	get := func(k string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return env[k]
	}
	e := Env{Addr: get("BUILDKIT_HOST"), Helper: get("LKBUILD_FRONTEND"), Registry: get("LKBUILD_REGISTRY"), Root: root}
	if e.Addr == "" || e.Helper == "" {
		msg := "integration test: no BUILDKIT_HOST/LKBUILD_FRONTEND (run `make env images`)"
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return e
}

// Root returns the repository root (the directory holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root not found")
		}
		dir = parent
	}
}

// EmulatorsRegistered lists the qemu-user interpreters registered with
// binfmt_misc (none when binfmt_misc is not mounted): with none, a build
// that succeeds executed no binary of a foreign architecture.
func EmulatorsRegistered() ([]string, error) {
	ents, err := os.ReadDir("/proc/sys/fs/binfmt_misc")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "qemu-") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// RequireNoEmulation fails the test when any qemu-user interpreter is
// registered: the test would then prove nothing about cross builds.
func RequireNoEmulation(t testing.TB) {
	t.Helper()
	emu, err := EmulatorsRegistered()
	if err != nil {
		t.Fatalf("reading binfmt_misc: %v", err)
	}
	if len(emu) > 0 {
		t.Fatalf("binfmt_misc has emulators registered (%v): foreign binaries could run emulated, so this test cannot show that none ran", emu)
	}
}
