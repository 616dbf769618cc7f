package frontend_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/golden"
	"github.com/lkbuild/lkbuild/internal/testenv"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// generated are the paths LinuxKit's image extraction adds or replaces in
// every image tree; they appear in the manifest wherever a tree starts.
var generated = map[string]bool{"": true, "dev": true, "dev/pts": true, "dev/shm": true, "etc": true,
	"etc/hosts": true, "etc/resolv.conf": true, "etc/mtab": true, "proc": true, "sys": true}

// treeRE splits a path inside an image tree (a bundle's rootfs/ or lower/,
// a volume's lower/) into the tree and the path inside it.
var treeRE = regexp.MustCompile(`^(containers/(?:onboot|onshutdown|services)/[^/]+/(?:rootfs|lower)|containers/volumes/[^/]+/lower)(?:/(.*))?$`)

// manifestEntry reports whether a rootfs path belongs in the manifest:
// everything lkbuild generates, not the stand-in images' own files (which
// change with Debian's packages).
func manifestEntry(p string) bool {
	if m := treeRE.FindStringSubmatch(p); m != nil {
		return generated[m[2]]
	}
	switch {
	case strings.HasPrefix(p, "containers"), strings.HasPrefix(p, "boot"):
		return true
	case generated[p], strings.HasPrefix(p, "etc/app"), strings.HasPrefix(p, "var/lib/web"),
		p == "etc/localtime", p == "etc/linuxkit-config", p == "etc/issue", p == "var", p == "var/lib":
		return true
	}
	return false
}

// TestRootfsManifest builds rootfs.yml merged with rootfs-extra.yml to the
// tar target through the real buildkitd and compares paths, types, modes,
// owners, link targets and (for generated files) contents with
// testdata/rootfs.manifest.
func TestRootfsManifest(t *testing.T) {
	env := testenv.Integration(t)
	dir := filepath.Join(env.Root, "frontend/testdata")
	tarFile := filepath.Join(t.TempDir(), "rootfs.tar")
	build(t, env, cli.BuildOptions{File: filepath.Join(dir, "rootfs.yml"), Merge: []string{filepath.Join(dir, "rootfs-extra.yml")},
		Context: dir, Target: "tar", Output: "type=tar,dest=" + tarFile, BuildArgs: []string{"SOURCE_DATE_EPOCH=0"}})
	var lines []string
	layout := map[string][]byte{} // the oci volume's files
	eachTarEntry(t, tarFile, func(h *tar.Header, tr io.Reader) {
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		for _, bad := range []string{".dockerenv", "Dockerfile", "etc/hostname", "dev/console"} {
			if p == bad || strings.HasSuffix(p, "/"+bad) {
				t.Errorf("%s must be filtered out of every image", p)
			}
		}
		if rel, ok := strings.CutPrefix(p, "containers/volumes/layout/lower/"); ok && h.Typeflag == tar.TypeReg {
			layout[rel], _ = io.ReadAll(tr)
		}
		if !manifestEntry(p) {
			return
		}
		line := fmt.Sprintf("%s %04o %d:%d %s", typeName(h.Typeflag), h.Mode&0o7777, h.Uid, h.Gid, p)
		switch h.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			line += " -> " + h.Linkname
		case tar.TypeReg:
			sum := sha256.New()
			n, _ := io.Copy(sum, tr)
			if !strings.HasPrefix(p, "boot/kernel") && !strings.HasPrefix(p, "boot/") || p == "boot/cmdline" {
				line += fmt.Sprintf(" %d sha256:%x", n, sum.Sum(nil)[:8])
			}
		}
		lines = append(lines, line)
	})
	checkLayout(t, layout)
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	// go test -update rewrites testdata/rootfs.manifest from a real build.
	golden.Check(t, filepath.Join(dir, "rootfs.manifest"), []byte(got), "TestRootfsManifest")
}

func typeName(tf byte) string {
	switch tf {
	case tar.TypeDir:
		return "dir"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeReg:
		return "file"
	case tar.TypeChar:
		return "char"
	case tar.TypeBlock:
		return "block"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type%c", tf)
}

// checkLayout follows the oci volume's index.json to the amd64 image and
// checks its layer holds busybox.
func checkLayout(t *testing.T, files map[string][]byte) {
	t.Helper()
	blob := func(d ocispecs.Descriptor, v any) []byte {
		b, ok := files["blobs/sha256/"+d.Digest.Encoded()]
		if !ok || digest.FromBytes(b) != d.Digest {
			t.Fatalf("oci volume: blob %s missing or corrupt", d.Digest)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci volume: oci-layout = %q (files %d)", files["oci-layout"], len(files))
	}
	var top, idx ocispecs.Index
	if err := json.Unmarshal(files["index.json"], &top); err != nil || len(top.Manifests) != 1 {
		t.Fatalf("oci volume: index.json = %s", files["index.json"])
	}
	if ref := top.Manifests[0].Annotations[ocispecs.AnnotationRefName]; ref != "docker.io/library/busybox:1.36" {
		t.Errorf("oci volume: ref name %q", ref)
	}
	blob(top.Manifests[0], &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Platform == nil || idx.Manifests[0].Platform.Architecture != "amd64" {
		t.Fatalf("oci volume: image index %+v", idx.Manifests)
	}
	var m ocispecs.Manifest
	blob(idx.Manifests[0], &m)
	zr, err := gzip.NewReader(bytes.NewReader(blob(m.Layers[0], nil)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("oci volume: layer has no bin/busybox (%v)", err)
		}
		if h.Name == "bin/busybox" {
			return
		}
	}
}
