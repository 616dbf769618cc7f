package frontend_test

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// standinInit is the stand-in init image of examples/minimal.yml.
const standinInit = "linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a"

// TestBuildxBuildContextOCILayout drives the user's path: docker buildx
// build --build-context NAME=oci-layout://DIR, NAME being the init image
// as the YAML writes it, while no registry has that image. The init in the
// root filesystem is the layout's.
func TestBuildxBuildContextOCILayout(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "init-layout")
	testenv.OCILayout(t, env, "docker.io/"+standinInit, ocispecs.Platform{OS: "linux", Architecture: "amd64"}, layout)
	const localOnly = "linuxkit/init:lkbuild-local-only"
	yml := "init:\n  - " + localOnly + "\n"
	if err := os.WriteFile(filepath.Join(dir, "local.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	buildx := func(dest string, extra ...string) ([]byte, error) {
		args := append([]string{"buildx", "build", "--builder", "lkbuild", "--progress", "plain",
			"--build-arg", "BUILDKIT_SYNTAX=" + env.Helper, "-f", "local.yml", "--target", "tar",
			"-o", "type=tar,dest=" + dest}, extra...)
		cmd := exec.Command("docker", append(args, ".")...)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	if b, err := buildx(filepath.Join(dir, "none.tar")); err == nil || !strings.Contains(string(b), "lkbuild-local-only: not found") {
		t.Fatalf("build without --build-context: %v, want the image not found:\n%s", err, b)
	}
	tarFile := filepath.Join(dir, "rootfs.tar")
	if b, err := buildx(tarFile, "--build-context", localOnly+"=oci-layout://"+layout); err != nil {
		t.Fatalf("docker buildx build: %v\n%s", err, b)
	}
	var names []string
	eachTarEntry(t, tarFile, func(h *tar.Header, _ io.Reader) {
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"))
	})
	for _, p := range []string{"init", "sbin/init", "bin/busybox"} {
		if !slices.Contains(names, p) {
			t.Errorf("rootfs lacks the init image's %s", p)
		}
	}
}

// TestBuildContextDirectoryAndImage: lkbuild build --build-context gives
// an onboot image as a local directory (its files, and no image config:
// the YAML's command runs) and a service image as another image
// (docker-image://, whose config gives the command), neither of which any
// registry has under the YAML's names.
func TestBuildContextDirectoryAndImage(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	imgDir := filepath.Join(dir, "from-dir")
	if err := os.MkdirAll(filepath.Join(imgDir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(imgDir, "etc/from-dir"), []byte("directory context\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yml := `init:
  - ` + standinInit + `
onboot:
  - name: fromdir
    image: example.com/lkbuild/from-dir:1
    command: ["/bin/true"]
services:
  - name: fromimage
    image: example.com/lkbuild/from-image:1
`
	file := filepath.Join(dir, "ctx.yml")
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(dir, "rootfs.tar")
	build(t, env, cli.BuildOptions{File: file, Context: dir, Target: "tar", Output: "type=tar,dest=" + tarFile,
		Contexts: []string{
			"example.com/lkbuild/from-dir:1=" + imgDir,
			"example.com/lkbuild/from-image:1=docker-image://busybox:1.36",
		}})
	names, data := map[string]bool{}, map[string][]byte{}
	eachTarEntry(t, tarFile, func(h *tar.Header, r io.Reader) {
		n := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		names[n] = true
		if strings.HasSuffix(n, "config.json") || n == "containers/onboot/000-fromdir/lower/etc/from-dir" {
			data[n], _ = io.ReadAll(r)
		}
	})
	if got := string(data["containers/onboot/000-fromdir/lower/etc/from-dir"]); got != "directory context\n" {
		t.Errorf("onboot image from the directory: etc/from-dir = %q", got)
	}
	if !names["containers/services/fromimage/lower/bin/busybox"] && !names["containers/services/fromimage/rootfs/bin/busybox"] {
		t.Error("service image from docker-image://busybox:1.36 lacks bin/busybox")
	}
	args := func(p string) []string {
		var s specs.Spec
		if err := json.Unmarshal(data[p], &s); err != nil || s.Process == nil {
			t.Fatalf("%s: %v", p, err)
		}
		return s.Process.Args
	}
	if got := args("containers/onboot/000-fromdir/config.json"); !slices.Equal(got, []string{"/bin/true"}) {
		t.Errorf("onboot args = %q, want the YAML's command", got)
	}
	if got := args("containers/services/fromimage/config.json"); !slices.Equal(got, []string{"sh"}) {
		t.Errorf("service args = %q, want busybox's Cmd", got)
	}
}
