package frontend_test

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/lkbuild/lkbuild/llbgen"
)

// TestReproducibleWithoutEpoch builds rootfs.yml (kernel, init images,
// bundles, volumes of every kind, every kind of files entry) twice without
// SOURCE_DATE_EPOCH and without the cache, as tar (LinuxKit's tar output)
// and kernel+initrd, and compares the bytes. The directories lkbuild
// creates or writes into must carry LinuxKit's fixed time for created
// entries (llbgen.LinuxKitModTime), not the time of the build; the artifact
// files the Unix epoch.
func TestReproducibleWithoutEpoch(t *testing.T) {
	env := testenv.Integration(t)
	dir := filepath.Join(env.Root, "frontend/testdata")
	opts := func(target, out string) cli.BuildOptions {
		return cli.BuildOptions{File: filepath.Join(dir, "rootfs.yml"), Context: dir, Target: target, Output: out, NoCache: true}
	}
	t.Run("tar", func(t *testing.T) {
		var times [2]map[string]int64
		var sums [2]map[string]string
		for i := range times {
			tarDir := t.TempDir()
			build(t, env, opts("tar", "type=tar,dest="+filepath.Join(tarDir, "rootfs.tar")))
			sums[i] = dirSums(t, tarDir)
			times[i] = map[string]int64{}
			eachTarEntry(t, filepath.Join(tarDir, "rootfs.tar"), func(h *tar.Header, _ io.Reader) {
				times[i][strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = h.ModTime.UnixNano()
			})
		}
		if d := timeDiffs(times[0], times[1]); d != "" || fmt.Sprint(sums[0]) != fmt.Sprint(sums[1]) {
			t.Errorf("two builds differ (%v, %v); entries whose times differ:\n%s", sums[0], sums[1], d)
		}
		// Directories lkbuild creates, or writes entries into, carry the epoch.
		for _, p := range []string{
			"boot", "containers", "containers/onboot", "containers/onboot/000-format",
			"containers/onboot/000-format/lower", "containers/onboot/000-format/lower/etc",
			"containers/onboot/000-format/lower/dev", "containers/services/web",
			"containers/volumes/cache", "containers/volumes/layout/lower", "containers/volumes/layout/lower/blobs",
			"etc", "etc/app", "var", "var/lib", "dev",
		} {
			mt, ok := times[0][p]
			if !ok {
				t.Errorf("the tar lacks %s", p)
			} else if mt != llbgen.LinuxKitModTime.UnixNano() {
				t.Errorf("%s has time %d, want LinuxKit's %s", p, mt, llbgen.LinuxKitModTime)
			}
		}
	})
	t.Run("kernel+initrd", func(t *testing.T) {
		var sums [2]map[string]string
		var times [2]map[string]int64
		for i := range sums {
			out := build(t, env, opts("kernel+initrd", ""))
			sums[i] = dirSums(t, out)
			hdrs, _ := readInitrd(t, filepath.Join(out, "rootfs-initrd.img"))
			times[i] = map[string]int64{}
			for name, h := range hdrs {
				times[i][name] = h.Mtime * 1e9
			}
			for _, f := range []string{"rootfs-kernel", "rootfs-initrd.img", "rootfs-cmdline"} {
				if fi, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Error(err)
				} else if fi.ModTime().Unix() != 0 {
					t.Errorf("%s has time %s, want the Unix epoch", f, fi.ModTime())
				}
			}
		}
		if d := timeDiffs(times[0], times[1]); d != "" || fmt.Sprint(sums[0]) != fmt.Sprint(sums[1]) {
			t.Errorf("two builds differ (%v, %v); initrd entries whose times differ:\n%s", sums[0], sums[1], d)
		}
	})
}

// timeDiffs lists the entries of a and b whose times differ (at most 20).
func timeDiffs(a, b map[string]int64) string {
	var out []string
	for p, ta := range a {
		if tb, ok := b[p]; !ok || ta != tb {
			out = append(out, fmt.Sprintf("  %s: %d %d", p, ta, tb))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, fmt.Sprintf("  %s: only in the second", p))
		}
	}
	sort.Strings(out)
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("  ... %d more", len(out)-20))
	}
	return strings.Join(out, "\n")
}
