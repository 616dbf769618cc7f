package frontend_test

import (
	"archive/tar"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/lkbuild/lkbuild/llbgen"
)

// requireImage skips (or fails, when the environment is required) a test
// whose image is not in the local registry.
func requireImage(t *testing.T, env testenv.Env, repo, tag string) {
	t.Helper()
	reg := env.Registry
	if reg == "" {
		reg = "127.0.0.1:5000"
	}
	req, err := http.NewRequest(http.MethodHead, fmt.Sprintf("http://%s/v2/%s/manifests/%s", reg, repo, tag), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
	}
	msg := fmt.Sprintf("%s/%s:%s is not in the registry (run `make images`)", reg, repo, tag)
	if testenv.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestImageTreeDirs builds an image whose proc and sys are 0555, whose etc
// is 0700 and whose dev is a symlink into every kind of image tree and
// checks that each tree ends, as LinuxKit's do, with 0755 root-owned dev,
// dev/pts, dev/shm, etc, proc and sys directories at the epoch, keeping
// what they held, and that the symlink's target is untouched.
func TestImageTreeDirs(t *testing.T) {
	env := testenv.Integration(t)
	requireImage(t, env, "lkbuild/test-proc0555", "1")
	dir := filepath.Join(env.Root, "frontend/testdata")
	tarFile := filepath.Join(t.TempDir(), "rootfs.tar")
	build(t, env, cli.BuildOptions{File: filepath.Join(dir, "proc0555.yml"), Context: dir, Target: "tar", Output: "type=tar,dest=" + tarFile})
	hdrs := map[string]*tar.Header{}
	data := map[string]string{}
	eachTarEntry(t, tarFile, func(h *tar.Header, r io.Reader) {
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		hdrs[p] = h
		if h.Typeflag == tar.TypeReg && strings.HasSuffix(p, "kept") {
			b, _ := io.ReadAll(r)
			data[p] = string(b)
		}
	})
	for _, tree := range []string{"", "containers/onboot/000-writable/lower/", "containers/services/readonly/rootfs/", "containers/volumes/vol/lower/"} {
		for _, d := range []string{"dev", "dev/pts", "dev/shm", "etc", "proc", "sys"} {
			h := hdrs[tree+d]
			switch {
			case h == nil:
				t.Errorf("%s%s missing", tree, d)
			case h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o755 || h.Uid != 0 || h.Gid != 0:
				t.Errorf("%s%s: type %c mode %04o owner %d:%d, want a 0755 directory owned by 0:0", tree, d, h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid)
			case !h.ModTime.Equal(llbgen.LinuxKitModTime):
				t.Errorf("%s%s: mtime %s, want LinuxKit's %s (no SOURCE_DATE_EPOCH)", tree, d, h.ModTime, llbgen.LinuxKitModTime)
			}
		}
		for _, f := range []string{"etc/kept", "sys/kept", "run/dev/kept"} {
			if data[tree+f] != "kept\n" {
				t.Errorf("%s%s = %q, want the image's file", tree, f, data[tree+f])
			}
		}
		if hdrs[tree+"dev/kept"] != nil {
			t.Errorf("%sdev/kept: dev still leads to run/dev", tree)
		}
		if h := hdrs[tree+"etc/hosts"]; h == nil || h.Mode&0o7777 != 0o644 {
			t.Errorf("%setc/hosts = %+v", tree, h)
		}
	}
}
