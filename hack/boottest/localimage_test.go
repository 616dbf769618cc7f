package boottest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// standinInit is the stand-in init image of examples/minimal.yml.
const standinInit = "linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a"

// TestBootInitFromOCILayout builds examples/minimal.yml with an init image
// that no registry has, given with lkbuild build --build-context as an OCI
// layout directory (the stand-in init exported to disk), keyed by the
// normalised reference while the YAML writes the short one, and boots it.
// Without the build context the same build fails: the image is only on
// disk.
func TestBootInitFromOCILayout(t *testing.T) {
	env := testenv.Integration(t)
	requireQEMU(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "init-layout")
	testenv.OCILayout(t, env, "docker.io/"+standinInit, ocispecs.Platform{OS: "linux", Architecture: "amd64"}, layout)

	const localOnly = "linuxkit/init:lkbuild-local-only"
	minimal, err := os.ReadFile(filepath.Join(env.Root, "examples/minimal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(string(minimal), standinInit, localOnly, 1)
	if yml == string(minimal) {
		t.Fatalf("examples/minimal.yml does not use %s", standinInit)
	}
	file := filepath.Join(dir, "local.yml")
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	opts := cli.BuildOptions{File: file, Context: dir, Target: "kernel+initrd", Addr: env.Addr, Helper: env.Helper,
		Progress: "quiet", Log: &bytes.Buffer{}}

	opts.Output = filepath.Join(dir, "no-context")
	if err := cli.Build(ctx, opts); err == nil || !strings.Contains(err.Error(), "lkbuild-local-only") {
		t.Fatalf("build without --build-context: err = %v, want the image not found", err)
	}

	opts.Output = filepath.Join(dir, "out")
	opts.Contexts = []string{"docker.io/" + localOnly + "=oci-layout://" + layout}
	start := time.Now()
	if err := cli.Build(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Logf("built with the init from the OCI layout in %s", time.Since(start).Round(time.Millisecond))
	out := opts.Output
	vmctx, stop := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(stop)
	var log bytes.Buffer
	con, err := Run(vmctx, cli.RunOptions{Path: out}, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	if err := con.WaitFor(4*time.Minute, minimalMarkers...); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
	}
	t.Logf("booted: all markers seen after %s", time.Since(start).Round(time.Second))
}
