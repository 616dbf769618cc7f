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

// TestUsrMergedInit builds the boot test's usr-merged system to the tar
// target: the init image's lib -> usr/lib symlink stays, and the directories
// of the layers on both sides of it are stored through it (the kernel's
// lib/modules before it, runc's lib/ and lib64/ after it) instead of being
// hidden.
func TestUsrMergedInit(t *testing.T) {
	env := testenv.Integration(t)
	tarFile := filepath.Join(t.TempDir(), "usrmerge.tar")
	build(t, env, cli.BuildOptions{File: filepath.Join(env.Root, "hack/boottest/testdata/usrmerge.yml"), Context: env.Root,
		Target: "tar", Output: "type=tar,dest=" + tarFile})
	types := map[string]byte{}
	links := map[string]string{}
	eachTarEntry(t, tarFile, func(h *tar.Header, _ io.Reader) {
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		types[p] = h.Typeflag
		links[p] = h.Linkname
	})
	for _, l := range []string{"lib", "lib64", "bin", "sbin"} {
		if types[l] != tar.TypeSymlink || links[l] != "usr/"+l {
			t.Errorf("/%s: type %q -> %q, want a symlink to usr/%s", l, types[l], links[l], l)
		}
	}
	var modulesDep, loader, libc bool
	for p, ty := range types {
		if strings.HasPrefix(p, "lib/") || strings.HasPrefix(p, "lib64/") {
			t.Errorf("%s is stored under a path that is a symlink", p)
		}
		if ty != tar.TypeReg {
			continue
		}
		modulesDep = modulesDep || (strings.HasPrefix(p, "usr/lib/modules/") && strings.HasSuffix(p, "/modules.dep"))
		loader = loader || strings.HasPrefix(p, "usr/lib64/ld-linux")
		libc = libc || (strings.HasPrefix(p, "usr/lib/") && strings.Contains(p, "/libc.so"))
	}
	if !modulesDep || !loader || !libc {
		t.Errorf("stored through the symlinks: kernel modules.dep %v, runc's loader %v, runc's libc %v; want all", modulesDep, loader, libc)
	}
}

// TestFilesThroughUsrMergeSymlink: a files entry under lib/ with a
// usr-merged init image fails at its path, naming the path to write.
func TestFilesThroughUsrMergeSymlink(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	yml := filepath.Join(dir, "x.yml")
	if err := os.WriteFile(yml, []byte(`init:
  - lkbuild/init-usrmerge:1
files:
  - path: lib/modules-load.d/x.conf
    contents: "erofs\n"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := cli.Build(context.Background(), cli.BuildOptions{File: yml, Context: dir, Target: "tar",
		Output: "type=tar,dest=" + filepath.Join(dir, "x.tar"), Addr: env.Addr, Helper: env.Helper, Progress: "quiet"})
	want := "x.yml:4:11: files[0].path: /lib/modules-load.d/x.conf goes through /lib, a symlink to usr/lib that init[0] (lkbuild/init-usrmerge:1) provides; write the path it leads to, /usr/lib/modules-load.d/x.conf"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}
