package frontend_test

import (
	"archive/tar"
	"io"
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
