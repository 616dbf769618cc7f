package frontend_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
)

// partsSent builds o and returns how many of the initrd's parts the
// build sent and how many the initrd has, from the name of the client's
// step that receives them ("0 of 0" when it received none: there is no
// such step).
func partsSent(t *testing.T, env testenv.Env, o cli.BuildOptions) (string, string) {
	t.Helper()
	var mu sync.Mutex
	var name string
	o.OnStatus = func(st *client.SolveStatus) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range st.Vertexes {
			if strings.Contains(v.Name, "receive the initrd's parts") {
				name = v.Name
			}
		}
	}
	build(t, env, o)
	m := regexp.MustCompile(`\((\d+) of (\d+),`).FindStringSubmatch(name)
	if m == nil {
		return "0", "0"
	}
	return m[1], m[2]
}

// sameArtifacts fails unless dirs a and b hold the same files, byte for
// byte, with the same modes and times.
func sameArtifacts(t *testing.T, what, a, b string) {
	t.Helper()
	ents, err := os.ReadDir(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ents) {
		t.Errorf("%s: %d entries, want %d", what, len(got), len(ents))
	}
	for _, e := range ents {
		x, _ := os.ReadFile(filepath.Join(a, e.Name()))
		y, _ := os.ReadFile(filepath.Join(b, e.Name()))
		if !bytes.Equal(x, y) {
			t.Errorf("%s: %s differs (%d and %d bytes)", what, e.Name(), len(x), len(y))
		}
		fx, err1 := os.Stat(filepath.Join(a, e.Name()))
		fy, err2 := os.Stat(filepath.Join(b, e.Name()))
		if err1 != nil || err2 != nil || fx.Mode() != fy.Mode() || !fx.ModTime().Equal(fy.ModTime()) {
			t.Errorf("%s: %s: mode or time differs (%v, %v)", what, e.Name(), err1, err2)
		}
	}
}

// TestInitrdPartsCache: with a cache of initrd parts, the first build
// sends every part, a build with no change sends none, a build with one
// files entry changed sends one, and a build after a cached part was
// damaged sends that one again (and succeeds); each time the artifacts are those
// of a build without the cache, byte for byte, and the output holds no
// trace of the parts.
func TestInitrdPartsCache(t *testing.T) {
	env := testenv.Integration(t)
	orig, err := os.ReadFile(filepath.Join(env.Root, "examples/minimal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	yml := filepath.Join(dir, "minimal.yml")
	write := func(mark int64) {
		files := fmt.Sprintf("files:\n  - path: etc/lkbuild-mark\n    contents: \"%d\"\n", mark)
		if err := os.WriteFile(yml, append(orig, files...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cache := t.TempDir()
	o := cli.BuildOptions{File: yml, Context: dir, Target: "kernel+initrd", InitrdCache: cache}
	plain := o
	plain.InitrdCache = cli.InitrdCacheNone
	mark := time.Now().UnixNano()
	write(mark)

	check := func(what, wantSent string) {
		t.Helper()
		o.Output = filepath.Join(t.TempDir(), "out")
		sent, all := partsSent(t, env, o)
		if sent != wantSent && !(wantSent == "all" && sent == all && all != "0") {
			t.Errorf("%s: %s of %s parts sent, want %s", what, sent, all, wantSent)
		}
		if _, err := os.Lstat(filepath.Join(o.Output, formats.InitrdPartsDir)); err == nil {
			t.Errorf("%s: %s left in the output", what, formats.InitrdPartsDir)
		}
		sameArtifacts(t, what, o.Output, build(t, env, plain))
	}
	check("first build", "all")
	check("no change", "0")
	write(mark + 1)
	check("one files entry changed", "1")

	// A cached part damaged between builds: the build finds it, removes
	// it, asks the frontend again and is sent that part alone.
	ents0, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	var biggest string
	var size int64
	for _, e := range ents0 {
		if fi, err := e.Info(); err == nil && formats.ValidSHA256(e.Name()) && fi.Size() > size {
			biggest, size = e.Name(), fi.Size()
		}
	}
	f, err := os.OpenFile(filepath.Join(cache, biggest), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0x00, 0xff}, size/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	check("a cached part damaged", "1")

	// The cache holds the parts of both builds, named by their digests.
	ents, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if formats.ValidSHA256(e.Name()) {
			n++
		}
	}
	if n < 3 {
		t.Errorf("the cache holds %d parts", n)
	}
}
