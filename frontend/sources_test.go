package frontend_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// TestFilesSourceSymlinks: a files source that is a symlink in the build
// context gets the content of the file it points to (LinuxKit reads the
// target), through chains and symlinked directories, with the entry's
// mode and owner; a symlink leaving the context, a dangling one and a
// symlink to a directory fail at the entry's line before any image is
// fetched, and a dangling optional one is skipped.
func TestFilesSourceSymlinks(t *testing.T) {
	env := testenv.Integration(t)
	ctxDir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(ctxDir, "conf/real"), 0o755))
	must(os.WriteFile(filepath.Join(ctxDir, "conf/real/app.conf"), []byte("port = 80\n"), 0o600))
	must(os.Symlink("real/app.conf", filepath.Join(ctxDir, "conf/link")))
	must(os.Symlink("link", filepath.Join(ctxDir, "conf/chain")))
	must(os.Symlink("conf/real", filepath.Join(ctxDir, "dirlink")))
	must(os.Symlink("../../outside", filepath.Join(ctxDir, "conf/escape")))
	must(os.Symlink("escape", filepath.Join(ctxDir, "conf/escape-chain")))
	must(os.Symlink("nowhere", filepath.Join(ctxDir, "conf/dangling")))
	must(os.Symlink("real", filepath.Join(ctxDir, "conf/to-dir")))
	write := func(name, yml string) string {
		t.Helper()
		f := filepath.Join(ctxDir, name)
		must(os.WriteFile(f, []byte(yml), 0o644))
		return f
	}

	good := write("good.yml", `files:
  - path: etc/link.conf
    source: conf/link
    mode: "0640"
    gid: 7
  - path: etc/chain.conf
    source: conf/chain
    mode: "0644"
  - path: etc/dirlink.conf
    source: dirlink/app.conf
    mode: "0644"
  - path: etc/opt/dangling.conf
    source: conf/dangling
    optional: true
`)
	tarFile := filepath.Join(t.TempDir(), "files.tar")
	build(t, env, cli.BuildOptions{File: good, Context: ctxDir, Target: "tar", Output: "type=tar,dest=" + tarFile})
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	eachTarEntry(t, tarFile, func(h *tar.Header, r io.Reader) {
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		hdrs[p] = h
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(r)
			data[p] = string(b)
		}
	})
	for p, mode := range map[string]int64{"etc/link.conf": 0o640, "etc/chain.conf": 0o644, "etc/dirlink.conf": 0o644} {
		h := hdrs[p]
		if h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o7777 != mode || data[p] != "port = 80\n" {
			t.Errorf("%s = %+v %q, want a mode %04o file with the symlink target's content", p, h, data[p], mode)
		}
	}
	if h := hdrs["etc/link.conf"]; h != nil && (h.Uid != 0 || h.Gid != 7) {
		t.Errorf("etc/link.conf owner %d:%d, want 0:7", h.Uid, h.Gid)
	}
	if hdrs["etc/opt/dangling.conf"] != nil || hdrs["etc/opt"] != nil {
		t.Error("a dangling optional source made something")
	}

	// The kernel image does not exist: the source errors must come first.
	for name, c := range map[string]struct{ source, want string }{
		"escape.yml":       {"conf/escape", "escape.yml:5:13: files[0].source: symlink conf/escape -> ../../outside leaves the build context"},
		"escape-chain.yml": {"conf/escape-chain", "escape-chain.yml:5:13: files[0].source: conf/escape-chain: symlink conf/escape -> ../../outside leaves the build context"},
		"dangling.yml":     {"conf/dangling", "dangling.yml:5:13: files[0].source: symlink conf/dangling -> nowhere is dangling"},
		"to-dir.yml":       {"conf/to-dir", "to-dir.yml:5:13: files[0].source: conf/to-dir leads to the directory conf/real"},
	} {
		f := write(name, "kernel:\n  image: lkbuild/no-such-kernel:0\nfiles:\n  - path: etc/x\n    source: "+c.source+"\n")
		err := cli.Build(context.Background(), cli.BuildOptions{File: f, Context: ctxDir, Target: "tar",
			Output: filepath.Join(t.TempDir(), "out"), Addr: env.Addr, Helper: env.Helper, Progress: "quiet"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "no-such-kernel") {
			t.Errorf("%s: an image was resolved before the sources were checked: %v", name, err)
		}
	}
}
