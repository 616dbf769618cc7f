package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/frontend"
	"golang.org/x/sys/unix"
)

// TestInitrdCacheFindsAllDamaged: a part gone from the cache does not
// stop the others from being checked, when the initrd is written after
// the build (writeParts) or while it runs (preassemble): every damaged
// part is removed in one try, so that the one time the build asks again
// (errPartGone) it is sent them all. It stopped at the first part gone,
// and the second try failed on a damaged part after it.
func TestInitrdCacheFindsAllDamaged(t *testing.T) {
	gone, bad1, bad2 := []byte("gone"), []byte("damaged one"), []byte("damaged two")
	setup := func(t *testing.T) (*initrdCache, formats.InitrdParts) {
		dir := t.TempDir()
		for _, p := range [][]byte{bad1, bad2} {
			d := append([]byte{}, p...)
			d[0] ^= 0xff
			if err := os.WriteFile(filepath.Join(dir, sum(p)), d, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c, err := openInitrdCache(context.Background(), dir, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		c.recv = t.TempDir()
		m := formats.InitrdParts{Initrd: "sys-initrd.img"}
		for _, p := range [][]byte{gone, bad1, bad2} {
			m.Parts = append(m.Parts, partOf(p))
		}
		return c, m
	}
	check := func(t *testing.T, c *initrdCache, err error) {
		t.Helper()
		if !errors.Is(err, errPartGone) {
			t.Fatalf("error %v, want one asking again", err)
		}
		for _, p := range [][]byte{bad1, bad2} {
			if fileExists(filepath.Join(c.dir, sum(p))) {
				t.Errorf("damaged part %q is still in the cache", p)
			}
		}
	}
	t.Run("after the build", func(t *testing.T) {
		c, m := setup(t)
		stage := t.TempDir()
		pd := filepath.Join(stage, formats.InitrdPartsDir)
		b, _ := json.Marshal(m)
		if err := os.MkdirAll(pd, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pd, formats.InitrdPartsManifest), b, 0o644); err != nil {
			t.Fatal(err)
		}
		check(t, c, c.assemble(stage))
	})
	t.Run("while it runs", func(t *testing.T) {
		c, m := setup(t)
		b, _ := json.Marshal(m)
		if err := c.ReceiveParts(context.Background(), b, nil); err != nil {
			t.Fatal(err)
		}
		pa := c.pending[sha256Hex(b)]
		// What the build does before asking again.
		c.settlePreassemblies()
		check(t, c, pa.err)
		if fileExists(pa.path) || len(c.pending) != 0 {
			t.Error("the initrd written meanwhile is left")
		}
	})
}

// TestInitrdCacheEntryReplaced: a cached part replaced, during the
// build, by a symlink (even to the right bytes), a FIFO or a directory
// is not read, and the build asks again (errPartGone), as for a part
// removed; it failed. The cache's list left it out from the start.
func TestInitrdCacheEntryReplaced(t *testing.T) {
	part := []byte("cached part")
	for name, replace := range map[string]func(t *testing.T, p string){
		"symlink": func(t *testing.T, p string) {
			right := filepath.Join(t.TempDir(), "right")
			if err := os.WriteFile(right, part, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(right, p); err != nil {
				t.Fatal(err)
			}
		},
		"fifo": func(t *testing.T, p string) {
			if err := unix.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"directory": func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			for _, early := range []bool{false, true} {
				c, err := openInitrdCache(context.Background(), t.TempDir(), io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				c.recv = t.TempDir()
				replace(t, filepath.Join(c.dir, sum(part)))
				m := formats.InitrdParts{Initrd: "sys-initrd.img", Parts: []formats.InitrdPart{partOf(part)}}
				b, _ := json.Marshal(m)
				if early {
					if err := c.ReceiveParts(context.Background(), b, nil); err != nil {
						t.Fatal(err)
					}
				}
				stage := t.TempDir()
				pd := filepath.Join(stage, formats.InitrdPartsDir)
				if err := os.MkdirAll(pd, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(pd, formats.InitrdPartsManifest), b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := c.assemble(stage); !errors.Is(err, errPartGone) {
					t.Errorf("written meanwhile %v: %v, want it asked again", early, err)
				}
				c.close()
			}
		})
	}
}

// TestInitrdCacheThroughSymlink: a cache named through a symlink in a
// directory anybody can write (and so re-point the symlink) is used at
// the place the symlink led to when the build began, where privateDir
// looked: it went on using the symlink, whose target could change
// under a cache it trusted as private.
func TestInitrdCacheThroughSymlink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	open := filepath.Join(base, "open")
	for _, d := range []string{real, open} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(open, "cache")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c := openTestCache(t, link)
	if c.dir != real || !c.private {
		t.Errorf("cache at %s (private %v), want %s (private)", c.dir, c.private, real)
	}
}

// TestReceivePartsAgain: a manifest passed again (the one passed ahead
// was not the one mkimage wrote: microcode from a files entry) does not
// have its parts received again when this build received them already;
// its initrd takes them from those received. They were all read from
// the daemon twice.
func TestReceivePartsAgain(t *testing.T) {
	a, b, u := bytes.Repeat([]byte("a"), recvChunk+3), []byte("segment b"), []byte("microcode")
	c := openTestCache(t, t.TempDir())
	c.recv = t.TempDir()
	ahead := formats.InitrdParts{Initrd: "sys-initrd.img", Parts: []formats.InitrdPart{partOf(a), partOf(b)}}
	ab, _ := json.Marshal(ahead)
	if err := c.ReceiveParts(context.Background(), ab, []frontend.PartReader{
		{Part: partOf(a), Read: sliceReader(a)}, {Part: partOf(b), Read: sliceReader(b)}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	read := map[string]bool{}
	counted := func(d []byte) func(context.Context, int64, int) ([]byte, error) {
		return func(ctx context.Context, off int64, n int) ([]byte, error) {
			mu.Lock()
			read[string(d[:1])] = true
			mu.Unlock()
			return sliceReader(d)(ctx, off, n)
		}
	}
	real := formats.InitrdParts{Initrd: "sys-initrd.img", Parts: []formats.InitrdPart{partOf(u), partOf(a), partOf(b)}}
	rb, _ := json.Marshal(real)
	if err := c.ReceiveParts(context.Background(), rb, []frontend.PartReader{
		{Part: partOf(u), Read: counted(u)}, {Part: partOf(a), Read: counted(a)}, {Part: partOf(b), Read: counted(b)}}); err != nil {
		t.Fatal(err)
	}
	if read["a"] || read["s"] || !read["m"] {
		t.Errorf("read again from the daemon: %v, want the microcode only", read)
	}
	pa := c.takePreassembly(rb)
	if pa == nil {
		t.Fatal("no initrd written meanwhile")
	}
	<-pa.done
	got, err := os.ReadFile(pa.path)
	if pa.err != nil || err != nil || !bytes.Equal(got, bytes.Join([][]byte{u, a, b}, nil)) {
		t.Errorf("initrd: %v, %v, %d bytes", pa.err, err, len(got))
	}
}
