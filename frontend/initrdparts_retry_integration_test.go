package frontend_test

import (
	"fmt"
	"os"
	"path/filepath"
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
// boot/ucode.cpio makes the manifest mkimage writes differ from the one
// the frontend passes ahead (no microcode in the kernel section): the
// manifest passed again has only the microcode received, the segments
// being received already (they were all received twice), and the
// artifacts are those of a build without the cache.
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
	if sent, all := partsSent(t, env, o); sent != "1" || all == "1" {
		t.Errorf("the manifest passed again: %s of %s parts received, want the microcode alone", sent, all)
	}
	sameArtifacts(t, "microcode from files", o.Output, build(t, env, plain))
}
