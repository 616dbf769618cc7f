package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	if err := c.ReceiveParts(context.Background(), 9, parts); err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		got, err := os.ReadFile(filepath.Join(c.recv, p.Part.SHA256))
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("part of %d bytes: %d bytes written (%v)", len(datas[i]), len(got), err)
		}
	}
	if len(shown) != 2 || shown[0].Completed != nil || shown[1].Completed == nil || shown[1].Digest != shown[0].Digest ||
		!strings.Contains(shown[1].Name, "(7 of 9, ") {
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
		c := &initrdCache{recv: t.TempDir()}
		err := c.ReceiveParts(context.Background(), 1, []frontend.PartReader{pr})
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if ents, _ := os.ReadDir(c.recv); len(ents) != 0 {
			t.Errorf("%s: %d files left", name, len(ents))
		}
	}
}
