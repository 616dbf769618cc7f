package frontend_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// damageCached changes one byte in the middle of every part in the
// initrd cache dir and returns how many it changed.
func damageCached(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !formats.ValidSHA256(e.Name()) || fi.Size() == 0 {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, e.Name()), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		f.Close()
		n++
	}
	return n
}

// TestInitrdPartsCacheDamagedTwoPlatforms: with two platforms whose
// initrds share parts, every cached part damaged between builds: the
// build finds them, asks again and succeeds, with the artifacts of a
// build without the cache. The initrds written from the damaged parts
// while the first attempt ran were kept for the second, which then took
// one of them, failed, for the platform it had not reached.
func TestInitrdPartsCacheDamagedTwoPlatforms(t *testing.T) {
	env := testenv.Integration(t)
	cache := t.TempDir()
	o := cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "kernel+initrd",
		Platform: "linux/amd64,linux/arm64", InitrdCache: cache}
	plain := o
	plain.InitrdCache = cli.InitrdCacheNone
	want := build(t, env, plain)
	build(t, env, o)
	if n := damageCached(t, cache); n < 4 {
		t.Fatalf("%d parts in the cache", n)
	}
	got := build(t, env, o)
	for _, p := range []string{"linux_amd64", "linux_arm64"} {
		sameArtifacts(t, "after damage, "+p, filepath.Join(got, p), filepath.Join(want, p))
	}
}

// TestInitrdPartsCacheUCodeFromFiles: a files entry writing
// boot/ucode.cpio (no microcode in the kernel section) gives a microcode
// part that the mkimage step writes: the manifest the frontend composes
// has it first, every part is received once, and the artifacts are those
// of a build without the cache. (A manifest guessed from the segments
// alone missed it, and the parts were received twice.)
func TestInitrdPartsCacheUCodeFromFiles(t *testing.T) {
	env := testenv.Integration(t)
	orig, err := os.ReadFile(filepath.Join(env.Root, "examples/minimal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	yml := filepath.Join(dir, "ucode.yml")
	files := fmt.Sprintf("files:\n  - path: boot/ucode.cpio\n    contents: \"microcode %d\"\n", time.Now().UnixNano())
	if err := os.WriteFile(yml, append(orig, files...), 0o644); err != nil {
		t.Fatal(err)
	}
	o := cli.BuildOptions{File: yml, Context: dir, Target: "kernel+initrd", InitrdCache: t.TempDir(),
		Output: filepath.Join(t.TempDir(), "out")}
	plain := o
	plain.InitrdCache, plain.Output = cli.InitrdCacheNone, ""
	sent, all := partsSent(t, env, o)
	if sent != all || sent == "0" {
		t.Errorf("%s of %s parts received, want every part once", sent, all)
	}
	ents, err := os.ReadDir(o.InitrdCache)
	if err != nil {
		t.Fatal(err)
	}
	ucode := false
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(o.InitrdCache, e.Name()))
		ucode = ucode || strings.HasPrefix(string(b), "microcode ")
	}
	if !ucode {
		t.Error("no microcode part in the cache")
	}
	sameArtifacts(t, "microcode from files", o.Output, build(t, env, plain))
}
