package boottest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/initrd"
	"github.com/lkbuild/lkbuild/internal/initramfs"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// listed is one line of the booted system's listing.
type listed struct {
	mode, uid, gid uint32
	mtime, size    int64
	dev            string
}

// parseListing reads the "lkseg|path|mode|uid|gid|mtime|size|dev" lines of
// the console; lines a kernel message broke are left out (and counted).
func parseListing(out string) (map[string]listed, int) {
	got, bad := map[string]listed{}, 0
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "lkseg|")
		if i < 0 {
			continue
		}
		f := strings.Split(strings.TrimRight(line[i:], "\r"), "|")
		if len(f) != 8 {
			bad++
			continue
		}
		mode, err1 := strconv.ParseUint(f[2], 16, 32)
		uid, err2 := strconv.ParseUint(f[3], 10, 32)
		gid, err3 := strconv.ParseUint(f[4], 10, 32)
		mtime, err4 := strconv.ParseInt(f[5], 10, 64)
		size, err5 := strconv.ParseInt(f[6], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil || !strings.HasPrefix(f[1], ".") {
			bad++
			continue
		}
		p := strings.TrimPrefix(strings.TrimPrefix(f[1], "."), "/")
		got[p] = listed{mode: uint32(mode), uid: uint32(uid), gid: uint32(gid), mtime: mtime, size: size, dev: f[7]}
	}
	return got, bad
}

// TestBootSegmentedListing boots testdata/segments.yml's kernel+initrd (a
// segmented initrd: one segment per container, then the base) and
// compares the listing an onboot container takes of the booted root
// filesystem with the tar target's tree: every entry of the tree must be
// there with its type, mode and owner, and a regular file with its size
// and time. What the running system legitimately changes is left out:
// entries it adds, other filesystems mounted on the root (compared by
// device), directory and symlink times (the stand-in init copies the
// initramfs onto a tmpfs, keeping files' times only) and the root
// directory itself (that tmpfs's).
func TestBootSegmentedListing(t *testing.T) {
	const file = "hack/boottest/testdata/segments.yml"
	con := buildAndBoot(t, file)
	if err := con.WaitForInOrder(4*time.Minute, "lkbuild-segments: listing done", "lkbuild-segments: service up"); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
	}
	got, bad := parseListing(con.Output())
	env := testenv.Integration(t)
	want := tarTree(t, env, filepath.Join(env.Root, file))
	rootDev := got[""].dev
	var missing, differ []string
	for p, n := range want.Nodes {
		if p == "" {
			continue
		}
		g, ok := got[p]
		if !ok {
			// below another filesystem mounted over a directory?
			if mountedOver(got, p, rootDev) {
				continue
			}
			missing = append(missing, p)
			continue
		}
		if g.dev != rootDev {
			continue
		}
		w := listed{mode: n.Mode, uid: n.UID, gid: n.GID}
		h := listed{mode: g.mode, uid: g.uid, gid: g.gid}
		if n.Mode&initramfs.TypeMask == initramfs.TypeReg {
			w.mtime, w.size, h.mtime, h.size = n.Mtime, n.Size, g.mtime, g.size
		}
		if w != h {
			differ = append(differ, fmt.Sprintf("/%s: booted %+v, tree %+v", p, h, w))
		}
	}
	t.Logf("%d entries of the tree, %d listed in the booted system, %d broken lines", len(want.Nodes), len(got), bad)
	// A kernel message on the console may break a line: allow as many
	// entries missing as broken lines, no more.
	if len(missing) > bad {
		t.Errorf("%d entries of the tree are not in the booted system (%d broken lines): %q", len(missing), bad, first(missing, 30))
	}
	if len(differ) > 0 {
		t.Errorf("%d entries differ between the booted system and the tree:\n%s", len(differ), strings.Join(first(differ, 40), "\n"))
	}
	if len(want.Nodes) < 100 {
		t.Errorf("only %d entries in the tree", len(want.Nodes))
	}
}

// mountedOver reports whether a directory above p is listed on another
// device: a filesystem mounted there hides the initramfs's entries.
func mountedOver(got map[string]listed, p, rootDev string) bool {
	for d := p; strings.Contains(d, "/"); {
		d = d[:strings.LastIndex(d, "/")]
		if g, ok := got[d]; ok && g.dev != rootDev {
			return true
		}
	}
	return false
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... %d more", len(s)-n))
	}
	return s
}

// tarTree builds file's tar target as a tar stream (which keeps owners)
// with buildx and the frontend image, and reads it without boot/.
func tarTree(t *testing.T, env testenv.Env, file string) *initramfs.FS {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "rootfs.tar")
	cmd := exec.Command("docker", "buildx", "build", "--builder", "lkbuild", "--progress", "quiet",
		"--build-arg", "BUILDKIT_SYNTAX="+env.Helper, "-f", file, "--target", "tar",
		"-o", "type=tar,dest="+dest, env.Root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar target: %v: %s", err, out)
	}
	f, err := os.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := initramfs.FromTar(f, func(rel string) bool { return initrd.SkipBoot(rel, true) })
	if err != nil {
		t.Fatal(err)
	}
	return fs
}
