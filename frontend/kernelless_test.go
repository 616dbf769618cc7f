package frontend_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
)

// kernelLessYAML has no kernel section, as some generators write them.
const kernelLessYAML = `# generated without a kernel
init:
  - linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a
onboot:
  - name: hello
    image: busybox:1.36
    command: ["/bin/true"]
`

// TestKernelLess builds a YAML without a kernel section: kernel+initrd
// writes only the initrd and tar the root filesystem without boot/, as
// LinuxKit; a bootable target fails at the YAML's first key before any
// image is looked up.
func TestKernelLess(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	yml := filepath.Join(dir, "nokernel.yml")
	if err := os.WriteFile(yml, []byte(kernelLessYAML), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("kernel+initrd", func(t *testing.T) {
		out := build(t, env, cli.BuildOptions{File: yml, Context: dir, Target: "kernel+initrd"})
		ents, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != "nokernel-initrd.img" {
			t.Errorf("kernel+initrd wrote %v, want only nokernel-initrd.img (no kernel, no cmdline, as LinuxKit)", names)
		}
		hdrs, _ := readInitrd(t, filepath.Join(out, "nokernel-initrd.img"))
		for _, p := range []string{"init", "containers/onboot/000-hello/config.json"} {
			if hdrs[p] == nil {
				t.Errorf("initrd lacks %s", p)
			}
		}
		for p := range hdrs {
			if p == "boot" || strings.HasPrefix(p, "boot/") {
				t.Errorf("initrd holds %s", p)
			}
		}
	})

	t.Run("tar", func(t *testing.T) {
		tarFile := filepath.Join(t.TempDir(), "rootfs.tar")
		build(t, env, cli.BuildOptions{File: yml, Context: dir, Target: "tar", Output: "type=tar,dest=" + tarFile})
		var names []string
		eachTarEntry(t, tarFile, func(h *tar.Header, _ io.Reader) {
			names = append(names, strings.TrimSuffix(h.Name, "/"))
		})
		sort.Strings(names)
		all := " " + strings.Join(names, " ") + " "
		if strings.Contains(all, " boot ") || strings.Contains(all, " boot/") {
			t.Error("the tar holds boot/ without a kernel section")
		}
		for _, p := range []string{"init", "containers/onboot/000-hello/config.json"} {
			if !strings.Contains(all, " "+p+" ") {
				t.Errorf("the tar lacks %s", p)
			}
		}
	})

	t.Run("raw-efi", func(t *testing.T) {
		var mu sync.Mutex
		var vertexes []string
		out := filepath.Join(t.TempDir(), "out")
		err := cli.Build(context.Background(), cli.BuildOptions{File: yml, Context: dir, Target: "raw-efi", Output: out,
			Addr: env.Addr, Helper: env.Helper, Progress: "quiet",
			OnStatus: func(st *client.SolveStatus) {
				mu.Lock()
				defer mu.Unlock()
				for _, v := range st.Vertexes {
					vertexes = append(vertexes, v.Name)
				}
			}})
		if err == nil {
			t.Fatal("raw-efi built without a kernel")
		}
		if !strings.Contains(err.Error(), "nokernel.yml:2:1: kernel: the YAML has no kernel section: target raw-efi boots a kernel") {
			t.Errorf("error %q does not name nokernel.yml:2:1 and the missing kernel section", err)
		}
		for _, v := range vertexes {
			if strings.Contains(v, "load metadata") || strings.Contains(v, "busybox") || strings.Contains(v, "linuxkit/init") {
				t.Errorf("an image was looked up before the error: %s", v)
				break
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a failed build left %s behind", out)
		}
	})
}
