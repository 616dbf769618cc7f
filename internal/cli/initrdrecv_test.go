package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
	s := sha256.Sum256(data)
	return formats.InitrdPart{SHA256: hex.EncodeToString(s[:]), Size: int64(len(data)), Segment: -1}
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
		"shorter": {Part: partOf(good), Read: sliceReader(good[:len(good)-1])},
		"longer":  {Part: partOf(good), Read: sliceReader(append(bytes.Clone(good), 0))},
		"other":   {Part: partOf(good), Read: sliceReader(bytes.Repeat([]byte{1}, len(good)))},
		"empty":   {Part: partOf(nil), Read: sliceReader([]byte{0})},
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
