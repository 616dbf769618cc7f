package release_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/binary"
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

	"github.com/lkbuild/lkbuild/internal/testenv"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// The stand-ins the release Dockerfile builds from (hack/images.sh pushes
// them), as repository and tag in the local registry.
var bases = [][2]string{
	{"library/debian", "bookworm-slim"},
	{"library/golang", "1.26-bookworm"},
	{"docker/dockerfile", "1"},
}

// ELF machine numbers of the image's platforms.
var elfMachine = map[string]uint16{"amd64": 62, "arm64": 183}

// TestReleaseImageBake builds the release image as a release is built
// (docker buildx bake of docker-bake.hcl, both platforms, pushed under a tag
// of the test's own), then checks the pushed index: linux/amd64 and
// linux/arm64 images whose entrypoint is the frontend, with the frontend
// labels and the VERSION and REVISION given to bake, whose /lkbuild is a
// binary of the image's architecture, with the bootloader files; and that
// the image works as a frontend: docker buildx builds examples/minimal.yml
// with it (kernel+initrd and iso-efi, which needs the bootloader files).
func TestReleaseImageBake(t *testing.T) {
	env := testenv.Integration(t)
	if env.Registry == "" {
		t.Skip("no LKBUILD_REGISTRY")
	}
	requireBuildx(t)
	for _, b := range bases {
		if !manifestExists(env.Registry, b[0], b[1]) {
			msg := fmt.Sprintf("stand-in %s:%s missing from %s (make images)", b[0], b[1], env.Registry)
			if testenv.Required() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}

	repo, tag := "lkbuild-test/release", fmt.Sprint(time.Now().UnixNano())
	ref := env.Registry + "/" + repo + ":" + tag
	version, revision := "v0.0.0-test."+tag, strings.Repeat("0123456789", 4)
	cmd := exec.Command("docker", "buildx", "bake", "--builder", "lkbuild", "--progress", "plain",
		"-f", "docker-bake.hcl", "--push", "frontend")
	cmd.Dir = env.Root
	cmd.Env = append(os.Environ(), "REPO="+env.Registry+"/"+repo, "TAG="+tag,
		"VERSION="+version, "REVISION="+revision)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker buildx bake: %v\n%s", err, b)
	}
	t.Logf("docker buildx bake of both platforms: %s", time.Since(start).Round(time.Second))

	base := "http://" + env.Registry + "/v2/" + repo
	var idx ocispecs.Index
	getJSON(t, base+"/manifests/"+tag, &idx)
	var platforms []string
	for _, d := range idx.Manifests {
		p := d.Platform
		if p == nil || p.OS != "linux" {
			continue // attestations (unknown/unknown)
		}
		platforms = append(platforms, p.OS+"/"+p.Architecture)
		t.Run(p.Architecture, func(t *testing.T) {
			checkImage(t, base, d.Digest.String(), p.Architecture, version, revision)
		})
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Fatalf("index platforms %q, want %q", platforms, want)
	}

	// The image as a frontend (and, as its own helper, mkimage).
	out := t.TempDir()
	b, err := exec.Command("docker", "buildx", "build", "--builder", "lkbuild", "--progress", "plain",
		"--build-arg", "BUILDKIT_SYNTAX="+ref, "-f", filepath.Join(env.Root, "examples/minimal.yml"),
		"--target", "kernel+initrd,iso-efi", "-o", "type=local,dest="+out, env.Root).CombinedOutput()
	if err != nil {
		t.Fatalf("docker buildx build with %s as frontend: %v\n%s", ref, err, b)
	}
	for _, name := range []string{"minimal-kernel", "minimal-initrd.img", "minimal-cmdline", "minimal-efi.iso"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("the build with the release image as frontend did not write %s (%v)", name, err)
		}
	}
}

// checkImage checks the image manifest dgst of the index, for arch.
func checkImage(t *testing.T, base, dgst, arch, version, revision string) {
	var m ocispecs.Manifest
	getJSON(t, base+"/manifests/"+dgst, &m)
	var img ocispecs.Image
	getJSON(t, base+"/blobs/"+m.Config.Digest.String(), &img)
	if img.OS != "linux" || img.Architecture != arch {
		t.Errorf("config platform %s/%s, want linux/%s", img.OS, img.Architecture, arch)
	}
	if want := []string{"/lkbuild", "frontend"}; !slices.Equal(img.Config.Entrypoint, want) {
		t.Errorf("entrypoint %q, want %q", img.Config.Entrypoint, want)
	}
	labels := img.Config.Labels
	for k, v := range map[string]string{
		"moby.buildkit.frontend.network.none": "true",
		"org.opencontainers.image.version":    version,
		"org.opencontainers.image.revision":   revision,
	} {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	caps := strings.Split(labels["moby.buildkit.frontend.caps"], ",")
	for _, c := range []string{"moby.buildkit.frontend.inputs", "moby.buildkit.frontend.subrequests", "moby.buildkit.frontend.contexts"} {
		if !slices.Contains(caps, c) {
			t.Errorf("label moby.buildkit.frontend.caps = %q lacks %s", labels["moby.buildkit.frontend.caps"], c)
		}
	}

	files := map[string]bool{}
	var machine uint16
	for _, l := range m.Layers {
		eachFile(t, base+"/blobs/"+l.Digest.String(), func(name string, r io.Reader) {
			files[name] = true
			if name != "lkbuild" {
				return
			}
			var hdr [20]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:4]) != "\x7fELF" {
				t.Errorf("/lkbuild is not an ELF binary (%v)", err)
				return
			}
			machine = binary.LittleEndian.Uint16(hdr[18:])
		})
	}
	if machine != elfMachine[arch] {
		t.Errorf("/lkbuild is for ELF machine %d, want %d (%s)", machine, elfMachine[arch], arch)
	}
	for _, f := range []string{
		"share/lkbuild/boot/amd64/grub-core.img", "share/lkbuild/boot/amd64/isolinux.bin",
		"share/lkbuild/boot/amd64/systemd-boot.efi", "share/lkbuild/boot/arm64/systemd-boot.efi",
	} {
		if !files[f] {
			t.Errorf("the image lacks /%s", f)
		}
	}
}

func requireBuildx(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "buildx", "inspect", "lkbuild").Run(); err != nil {
		if testenv.Required() {
			t.Fatalf("docker buildx builder lkbuild missing: %v", err)
		}
		t.Skip("docker buildx builder lkbuild missing (make env)")
	}
}

// manifestExists reports whether repo:tag is in the registry.
func manifestExists(registry, repo, tag string) bool {
	req, _ := http.NewRequest(http.MethodHead, "http://"+registry+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", strings.Join([]string{ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// getJSON decodes the registry's answer at url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", strings.Join([]string{ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest}, ", "))
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

// eachFile calls fn with the name (without a leading ./ or /) and the
// contents of every regular file of the gzip tar layer at url.
func eachFile(t *testing.T, url string, fn func(name string, r io.Reader)) {
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
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("layer %s: %v", url, err)
		}
		if h.Typeflag == tar.TypeReg {
			fn(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), tr)
		}
	}
}
