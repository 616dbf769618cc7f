package frontend_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// buildxMinimal runs docker buildx over examples/minimal.yml with the
// frontend of LKBUILD_FRONTEND and the extra arguments.
func buildxMinimal(t *testing.T, env testenv.Env, args ...string) ([]byte, error) {
	t.Helper()
	all := append([]string{"buildx", "build", "--builder", "lkbuild", "--progress", "plain",
		"--build-arg", "BUILDKIT_SYNTAX=" + env.Helper, "-f", "examples/minimal.yml"}, args...)
	cmd := exec.Command("docker", append(all, ".")...)
	cmd.Dir = env.Root
	return cmd.CombinedOutput()
}

// wantFiles fails unless dir holds exactly the files names.
func wantFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// TestBuildxSeveralTargets: docker buildx with --target a,b writes both
// formats' artifacts into one output from one root filesystem (one merge
// of two mkimage runs), and a bad list fails with every problem at once.
func TestBuildxSeveralTargets(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out := t.TempDir()
	b, err := buildxMinimal(t, env, "--target", "kernel+initrd,iso-efi", "-o", "type=local,dest="+out)
	if err != nil {
		t.Fatalf("docker buildx build: %v\n%s", err, b)
	}
	wantFiles(t, out, "minimal-kernel", "minimal-initrd.img", "minimal-cmdline", "minimal-efi.iso")
	if !bytes.Contains(b, []byte("[targets] merge artifacts")) {
		t.Errorf("no merge of the targets' artifacts in the progress:\n%s", b)
	}

	b, err = buildxMinimal(t, env, "--target", "tar,iso-efi,floppy", "-o", "type=local,dest="+t.TempDir())
	if err == nil {
		t.Fatal("--target tar,iso-efi,floppy built")
	}
	for _, want := range []string{"floppy", "target tar is the root filesystem tree itself"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("buildx output lacks %s:\n%s", want, b)
		}
	}
}

// TestSeveralTargets: lkbuild build --target a,b writes both formats, and
// each artifact is the one a build of its target alone writes.
func TestSeveralTargets(t *testing.T) {
	env := testenv.Integration(t)
	file := filepath.Join(env.Root, "examples/minimal.yml")
	epoch := []string{"SOURCE_DATE_EPOCH=1700000000"}
	both := build(t, env, cli.BuildOptions{File: file, Target: "kernel+initrd,uki", BuildArgs: epoch})
	wantFiles(t, both, "minimal-kernel", "minimal-initrd.img", "minimal-cmdline", "minimal.efi")
	alone := build(t, env, cli.BuildOptions{File: file, Target: "uki", BuildArgs: epoch})
	a, err := os.ReadFile(filepath.Join(both, "minimal.efi"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(alone, "minimal.efi"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the uki of a two-target build differs from that of a uki build")
	}
}

// TestBuildxDockerTargetImage: --target docker -o type=image gives a
// runnable image: LinuxKit's entrypoint in the config and the tree in the
// layers, read back from the registry it was pushed to.
func TestBuildxDockerTargetImage(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	if env.Registry == "" {
		t.Skip("no LKBUILD_REGISTRY")
	}
	repo := "lkbuild-test/docker-target"
	tag := fmt.Sprint(time.Now().UnixNano())
	b, err := buildxMinimal(t, env, "--target", "docker", "--provenance=false",
		"-o", "type=image,push=true,name="+env.Registry+"/"+repo+":"+tag)
	if err != nil {
		t.Fatalf("docker buildx build: %v\n%s", err, b)
	}
	base := "http://" + env.Registry + "/v2/" + repo
	var m ocispecs.Manifest
	getJSON(t, base+"/manifests/"+tag, &m)
	var img ocispecs.Image
	getJSON(t, base+"/blobs/"+m.Config.Digest.String(), &img)
	if !slices.Equal(img.Config.Entrypoint, []string{"/bin/rc.init"}) {
		t.Errorf("entrypoint %q, want [/bin/rc.init]", img.Config.Entrypoint)
	}
	if img.OS != "linux" || img.Architecture == "" {
		t.Errorf("platform %s/%s", img.OS, img.Architecture)
	}
	found := map[string]bool{}
	for _, l := range m.Layers {
		for _, n := range layerNames(t, base+"/blobs/"+l.Digest.String()) {
			found[strings.TrimPrefix(n, "./")] = true
		}
	}
	for _, want := range []string{"Dockerfile", "containers/onboot/000-hello/config.json", "etc/mtab"} {
		if !found[want] {
			t.Errorf("the image's layers lack %s", want)
		}
	}
}

// getJSON decodes the registry's answer at url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", ocispecs.MediaTypeImageManifest+", application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// layerNames lists the entries of the gzip tar layer at url.
func layerNames(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("layer %s: %v", url, err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("layer %s: %v", url, err)
		}
		names = append(names, h.Name)
	}
}
