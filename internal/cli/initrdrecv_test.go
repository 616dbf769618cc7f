package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/frontend"
	"github.com/moby/buildkit/client"
)

// sliceReader reads data as the frontend's part readers read a part in
// the daemon: at most n bytes from off.
func sliceReader(data []byte) func(context.Context, int64, int) ([]byte, error) {
	return func(_ context.Context, off int64, n int) ([]byte, error) {
		if off > int64(len(data)) {
			return nil, nil
		}
		end := min(int64(len(data)), off+int64(n))
		return bytes.Clone(data[off:end]), nil
	}
}

func partOf(data []byte) formats.InitrdPart {
	return formats.InitrdPart{SHA256: sha256Hex(data), Size: int64(len(data)), Segment: -1}
}

// TestReceiveParts: parts of every size around the chunk boundaries are
// written byte for byte under their SHA-256; a part shorter, longer or
// other than the manifest says, or a failing read, fails and leaves
// nothing; the progress shows one step, started and completed.
func TestReceiveParts(t *testing.T) {
	var parts []frontend.PartReader
	var datas [][]byte
	for _, n := range []int{0, 1, recvChunk - 1, recvChunk, recvChunk + 1, 3*recvChunk + 7, recvAhead*recvChunk + recvChunk} {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(i*7 + n)
		}
		datas = append(datas, d)
		parts = append(parts, frontend.PartReader{Part: partOf(d), Read: sliceReader(d)})
	}
	var mu sync.Mutex
	var shown []*client.Vertex
	c := &initrdCache{recv: t.TempDir(), status: func(st *client.SolveStatus) {
		mu.Lock()
		defer mu.Unlock()
		shown = append(shown, st.Vertexes...)
	}}
	// The manifest has two more parts, from the cache, and one received
	// part twice.
	c.dir, c.used = t.TempDir(), map[string]bool{}
	cachedA, cachedB := []byte("cached part A"), []byte("part B, cached")
	for _, d := range [][]byte{cachedA, cachedB} {
		if err := os.WriteFile(filepath.Join(c.dir, partOf(d).SHA256), d, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := formats.InitrdParts{Initrd: "x-initrd.img", Parts: []formats.InitrdPart{partOf(cachedA)}}
	want := append([]byte{}, cachedA...)
	for i, p := range parts {
		m.Parts = append(m.Parts, p.Part)
		want = append(want, datas[i]...)
		if i == 3 {
			m.Parts = append(m.Parts, partOf(cachedB), parts[1].Part)
			want = append(append(want, cachedB...), datas[1]...)
		}
	}
	manifest, _ := json.Marshal(m)
	if err := c.ReceiveParts(context.Background(), manifest, parts); err != nil {
		t.Fatal(err)
	}
	pa := c.takePreassembly(manifest)
	if pa == nil {
		t.Fatal("no initrd written meanwhile")
	}
	<-pa.done
	if got, err := os.ReadFile(pa.path); pa.err != nil || err != nil || !bytes.Equal(got, want) {
		t.Errorf("initrd written meanwhile: %v, %v, %d bytes of %d", pa.err, err, len(got), len(want))
	}
	for i, p := range parts {
		got, err := os.ReadFile(filepath.Join(c.recv, p.Part.SHA256))
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("part of %d bytes: %d bytes written (%v)", len(datas[i]), len(got), err)
		}
	}
	if len(shown) != 2 || shown[0].Completed != nil || shown[1].Completed == nil || shown[1].Digest != shown[0].Digest ||
		!strings.Contains(shown[1].Name, "(7 of 10, ") {
		t.Errorf("progress: %+v", shown)
	}

	good := datas[5]
	for name, pr := range map[string]frontend.PartReader{
		"shorter":           {Part: partOf(good), Read: sliceReader(good[:len(good)-1])},
		"longer":            {Part: partOf(good), Read: sliceReader(append(bytes.Clone(good), 0))},
		"other":             {Part: partOf(good), Read: sliceReader(bytes.Repeat([]byte{1}, len(good)))},
		"empty":             {Part: partOf(nil), Read: sliceReader([]byte{0})},
		"claims a petabyte": {Part: formats.InitrdPart{SHA256: partOf(good).SHA256, Size: 1 << 50, Segment: -1}, Read: sliceReader(good)},
		"read fails": {Part: partOf(good), Read: func(ctx context.Context, off int64, n int) ([]byte, error) {
			if off >= recvChunk {
				return nil, errors.New("the daemon went away")
			}
			return sliceReader(good)(ctx, off, n)
		}},
	} {
		c := &initrdCache{recv: t.TempDir(), dir: t.TempDir()}
		manifest, _ := json.Marshal(formats.InitrdParts{Initrd: "x-initrd.img", Parts: []formats.InitrdPart{pr.Part}})
		err := c.ReceiveParts(context.Background(), manifest, []frontend.PartReader{pr})
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		// The initrd being written fails too; the build's end (close)
		// removes it.
		if pa := c.pending[sha256Hex(manifest)]; pa == nil || func() error { <-pa.done; return pa.err }() == nil {
			t.Errorf("%s: the initrd written meanwhile has no error", name)
		}
		c.dropPreassemblies()
		if ents, _ := os.ReadDir(c.recv); len(ents) != 0 {
			t.Errorf("%s: %d files left", name, len(ents))
		}
	}
}

// TestPreassemblyDamagedCachedPart: a cached part whose bytes are not its
// name's, or that is longer, fails the initrd written during the build
// with errPartGone (the build asks again) and is removed from the cache;
// one gone from the cache fails it the same way.
func TestPreassemblyDamagedCachedPart(t *testing.T) {
	good := []byte("the cached segment")
	for name, cached := range map[string][]byte{
		"changed": []byte("the cached segmenX"),
		"longer":  append(bytes.Clone(good), '!'),
		"gone":    nil,
	} {
		c := &initrdCache{recv: t.TempDir(), dir: t.TempDir(), used: map[string]bool{}}
		p := filepath.Join(c.dir, partOf(good).SHA256)
		if cached != nil {
			if err := os.WriteFile(p, cached, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		manifest, _ := json.Marshal(formats.InitrdParts{Initrd: "x-initrd.img", Parts: []formats.InitrdPart{partOf(good)}})
		if err := c.ReceiveParts(context.Background(), manifest, nil); err != nil {
			t.Fatal(err)
		}
		pa := c.takePreassembly(manifest)
		<-pa.done
		if !errors.Is(pa.err, errPartGone) {
			t.Errorf("%s: %v, want errPartGone", name, pa.err)
		}
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s: the damaged part stayed in the cache", name)
		}
	}
}

// TestInitrdCacheSums: a build records the xxHash of each part it put in
// a private cache; a later build checks a cached part against it, so a
// part changed in place (same size) is still found damaged and removed
// with its xxHash; in a cache others can write, an xxHash written to
// match changed bytes is not trusted (the SHA-256 finds them); pruning
// removes a part's xxHash with it, and the xxHash of a part gone.
func TestInitrdCacheSums(t *testing.T) {
	part := bytes.Repeat([]byte("segment "), 1000)
	changed := bytes.Clone(part)
	changed[500] ^= 0xff
	build := func(cacheDir string) (*initrdCache, error) {
		c := openTestCache(t, cacheDir)
		stage := t.TempDir()
		stageParts(t, stage, [][]byte{part}, map[int]bool{0: !fileExists(filepath.Join(cacheDir, sum(part)))})
		return c, c.assemble(stage)
	}
	sumFile := func(dir string) string { return filepath.Join(dir, sum(part)+sumSuffix) }

	dir := t.TempDir()
	if c, err := build(dir); err != nil || !c.private {
		t.Fatalf("first build: %v (private %v)", err, c.private)
	}
	if !fileExists(sumFile(dir)) {
		t.Fatal("no xxHash recorded")
	}
	if _, err := build(dir); err != nil {
		t.Fatalf("second build, from the cache: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, sum(part)), changed, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := build(dir); !errors.Is(err, errPartGone) || !strings.Contains(err.Error(), "xxHash") {
		t.Errorf("changed part: %v", err)
	}
	if fileExists(filepath.Join(dir, sum(part))) || fileExists(sumFile(dir)) {
		t.Error("the damaged part or its xxHash stayed")
	}

	// A cache others can write: an xxHash matching changed bytes.
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := build(shared); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, sum(part)), changed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sumFile(shared), []byte(fmt.Sprintf("%016x %d\n", xxhash.Sum64(changed), len(changed))), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := build(shared); c.private || !errors.Is(err, errPartGone) || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("shared cache (private %v): %v", c.private, err)
	}

	// Pruning.
	defer func(n int64) { initrdCacheMaxBytes = n }(initrdCacheMaxBytes)
	initrdCacheMaxBytes = 0
	orphan := filepath.Join(dir, sum([]byte("gone"))+sumSuffix)
	if err := os.WriteFile(orphan, []byte("0000000000000000 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := openInitrdCache(context.Background(), dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	if fileExists(orphan) {
		t.Error("the xxHash of a part gone stayed")
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestPrivateDir: only a directory nobody else can write, below
// directories nobody else can write or sticky ones, is private.
func TestPrivateDir(t *testing.T) {
	base := t.TempDir()
	mk := func(p string, mode os.FileMode) string {
		p = filepath.Join(base, p)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		dir  string
		mode os.FileMode
		want bool
	}{
		{"a", 0o700, true},
		{"a/b", 0o755, true},
		{"c", 0o770, false},
		{"d", 0o777 | os.ModeSticky, false}, // the cache itself
		{"e", 0o777 | os.ModeSticky, true},  // a parent, as /tmp
		{"e/f", 0o700, true},
		{"g", 0o777, true},
		{"g/h", 0o700, false}, // below a directory anybody can rename in
	} {
		p := mk(tc.dir, tc.mode)
		if tc.dir == "e" || tc.dir == "g" {
			continue
		}
		if got := privateDir(p); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.dir, got, tc.want)
		}
	}
}

// TestPreassemblyMarksCachedUsed: the cached parts a manifest names get
// the current time when it arrives, so that another build's pruning
// (least recently used first) leaves them; a symlink at a part's name is
// touched itself, not what it points to.
func TestPreassemblyMarksCachedUsed(t *testing.T) {
	c := &initrdCache{recv: t.TempDir(), dir: t.TempDir(), used: map[string]bool{}}
	part := []byte("an old cached part")
	p := filepath.Join(c.dir, partOf(part).SHA256)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.WriteFile(p, part, 0o600); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := []byte("a symlink in the cache")
	if err := os.Symlink(victim, filepath.Join(c.dir, partOf(other).SHA256)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p, victim} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	manifest, _ := json.Marshal(formats.InitrdParts{Initrd: "x-initrd.img", Parts: []formats.InitrdPart{partOf(part), partOf(other)}})
	c.ReceiveParts(context.Background(), manifest, nil)
	c.dropPreassemblies()
	if fi, err := os.Stat(p); err != nil || time.Since(fi.ModTime()) > time.Hour {
		t.Errorf("the cached part was not marked used: %v", err)
	}
	if fi, err := os.Stat(victim); err != nil || time.Since(fi.ModTime()) < time.Hour {
		t.Errorf("the file a symlink in the cache points to was touched: %v", err)
	}
}
