package boottest

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// Markers of examples/minimal.yml: the onboot container's line, the
// service's line and the stand-in init's.
var minimalMarkers = []string{
	"lkinit: onboot hello start",
	"lkbuild-demo: hello from onboot",
	"lkinit: all services started",
	"lkbuild-demo: httpd service up",
}

// Markers of testdata/features.yml, in the order they must appear. The
// containers' lines end in a word read back from a file, so each one shows
// that its feature worked.
var featuresMarkers = []string{
	"lkinit: volume shared mounted",
	// a writable container writes into its own root filesystem
	"lkinit: onboot rw-rootfs start",
	"lkbuild-features: writable rootfs: rootfs-write-ok",
	"lkinit: onboot rw-rootfs exit 0",
	// a files entry, read through a read-only bind
	"lkbuild-features: files entry mode 644: files-entry-ok",
	"lkinit: onboot files-read exit 0",
	// a host directory bound into two containers
	"lkbuild-features: host bind written",
	"lkinit: onboot bind-write exit 0",
	"lkbuild-features: host bind read back: host-bind-ok",
	"lkinit: onboot bind-read exit 0",
	// an empty volume bound into two containers
	"lkbuild-features: volume written",
	"lkinit: onboot volume-write exit 0",
	"lkbuild-features: volume read back: volume-ok",
	"lkinit: onboot volume-read exit 0",
	// the poweroff service, then init's shutdown with the onshutdown container
	"lkinit: service poweroff started",
	"lkinit: all services started",
	"lkbuild-features: powering off",
	"lkinit: shutdown poweroff",
	"lkinit: onshutdown goodbye start",
	"lkbuild-features: onshutdown goodbye ran",
	"lkinit: onshutdown goodbye exit 0",
}

func TestBootMinimalKernelInitrd(t *testing.T) {
	con := buildAndBoot(t, "examples/minimal.yml")
	if err := con.WaitFor(4*time.Minute, minimalMarkers...); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
	}
	t.Logf("booted: all markers seen")
}

func TestBootFeatures(t *testing.T) {
	con := buildAndBoot(t, "hack/boottest/testdata/features.yml")
	start := time.Now()
	if err := con.WaitForInOrder(4*time.Minute, featuresMarkers...); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
	}
	t.Logf("booted: all %d markers seen in order after %s", len(featuresMarkers), time.Since(start).Round(time.Second))
}

// buildAndBoot builds file (relative to the repository root, which is also
// the build context) with target kernel+initrd through the in-process
// frontend and boots the result with `lkbuild run` (cli.Run). The machine lives until the test
// ends (at most 5 minutes). It skips like testenv.Integration, and when qemu
// is missing.
func buildAndBoot(t *testing.T, file string) *Console {
	t.Helper()
	env := testenv.Integration(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if testenv.Required() {
			t.Fatal("qemu-system-x86_64 not installed (make env)")
		}
		t.Skip("qemu-system-x86_64 not installed")
	}
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	if err := cli.Build(ctx, cli.BuildOptions{File: filepath.Join(env.Root, file), Context: env.Root,
		Target: "kernel+initrd", Output: out, Addr: env.Addr, Helper: env.Helper, Progress: "quiet"}); err != nil {
		t.Fatal(err)
	}
	// the directory, as `lkbuild run out/` finds its one kernel+initrd
	vmctx, stop := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(stop)
	var log bytes.Buffer
	con, err := Run(vmctx, cli.RunOptions{Path: out}, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	return con
}

// TestBootUsrMerge boots a system whose init image has a merged /usr: the
// kernel's modules, stored through the lib -> usr/lib symlink, are loaded
// at boot (the writable onboot container needs overlay; it checks erofs),
// and runc, whose libraries were stored through lib and lib64, runs the
// containers.
func TestBootUsrMerge(t *testing.T) {
	con := buildAndBoot(t, "hack/boottest/testdata/usrmerge.yml")
	if err := con.WaitForInOrder(4*time.Minute,
		"lkinit: modules: loaded",
		"lkinit: onboot modules start",
		"lkbuild-usrmerge: module erofs loaded",
		"lkinit: onboot modules exit 0",
		"lkbuild-usrmerge: service up",
	); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
	}
}
