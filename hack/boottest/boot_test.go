package boottest

import (
	"bytes"
	"context"
	"os"
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

func TestBootMinimalKernelInitrd(t *testing.T) {
	env := testenv.Integration(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if testenv.Required() {
			t.Fatal("qemu-system-x86_64 not installed (make env)")
		}
		t.Skip("qemu-system-x86_64 not installed")
	}
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := cli.Build(ctx, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Context: env.Root,
		Target: "kernel+initrd", Output: out, Addr: env.Addr, Helper: env.Helper, Progress: "quiet"}); err != nil {
		t.Fatal(err)
	}
	cmdline, err := os.ReadFile(filepath.Join(out, "minimal-cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	vmctx, stop := context.WithTimeout(ctx, 5*time.Minute)
	defer stop()
	var log bytes.Buffer
	con, err := QEMUKernel(vmctx, filepath.Join(out, "minimal-kernel"), filepath.Join(out, "minimal-initrd.img"), string(cmdline), &log)
	if err != nil {
		t.Fatal(err)
	}
	if err := con.WaitFor(4*time.Minute, minimalMarkers...); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
	}
	t.Logf("booted: all markers seen")
}
