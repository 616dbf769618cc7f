package initramfs

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/exporter/cpio"
)

// ent is one archive entry of a test: type is taken from mode.
type ent struct {
	name  string
	mode  uint32
	mtime int64
	data  string // contents, or a symlink's target
	ino   uint32
	nlink uint32
	uid   uint32
}

// archive writes ents as one newc archive (with its trailer), gzipped.
func archive(t *testing.T, ents ...ent) []byte {
	t.Helper()
	var raw bytes.Buffer
	w := cpio.NewWriter(&raw)
	for i, e := range ents {
		h := &cpio.Header{Name: e.name, Mode: e.mode, Mtime: e.mtime, UID: e.uid, Ino: e.ino, NLink: e.nlink}
		if h.Ino == 0 {
			h.Ino = uint32(1000 + i)
		}
		if h.NLink == 0 {
			h.NLink = 1
		}
		if e.mode&TypeMask == TypeSymlink {
			h.Linkname = e.data
		} else {
			h.Size = int64(len(e.data))
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.mode&TypeMask == TypeReg {
			if _, err := w.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	return gz.Bytes()
}

func unpack(t *testing.T, segs ...[]byte) *FS {
	t.Helper()
	fs, err := Unpack(bytes.NewReader(bytes.Join(segs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

const (
	dir  = TypeDir
	reg  = TypeReg
	link = TypeSymlink
)

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		segs [][]ent
		// want maps paths to Describe() prefixes; "" means absent.
		want map[string]string
		// errs is how many entries the kernel would fail on.
		errs int
	}{
		{
			name: "a directory in several segments: the last one's mode, owner and time",
			segs: [][]ent{
				{{name: "d", mode: dir | 0o700, mtime: 10, uid: 5}, {name: "d/a", mode: reg | 0o644, mtime: 1, data: "a"}},
				{{name: "d", mode: dir | 0o755, mtime: 20}, {name: "d/b", mode: reg | 0o600, mtime: 2, data: "b"}},
			},
			want: map[string]string{"d": "mode 040755 uid 0 gid 0 mtime 20", "d/a": "mode 100644 uid 0 gid 0 mtime 1 size 1", "d/b": "mode 100600 uid 0 gid 0 mtime 2 size 1"},
		},
		{
			name: "a directory's time is applied after everything, not spoiled by later children",
			segs: [][]ent{
				{{name: "d", mode: dir | 0o755, mtime: 30}},
				{{name: "d/x", mode: reg | 0o644, mtime: 5, data: "x"}},
			},
			want: map[string]string{"d": "mode 040755 uid 0 gid 0 mtime 30"},
		},
		{
			name: "the root's . entry sets its mode, owner and time",
			segs: [][]ent{{{name: ".", mode: dir | 0o755, mtime: 7}}},
			want: map[string]string{"": "mode 040755 uid 0 gid 0 mtime 7"},
		},
		{
			name: "without a . entry the root keeps tmpfs's 1777",
			segs: [][]ent{{{name: "x", mode: dir | 0o755, mtime: 7}}},
			want: map[string]string{"": "mode 041777"},
		},
		{
			name: "hard links within one archive share an inode",
			segs: [][]ent{{{name: "f", mode: reg | 0o644, ino: 9, nlink: 2, data: "data"}, {name: "g", mode: reg | 0o644, ino: 9, nlink: 2}}},
			want: map[string]string{"f": "mode 100644 uid 0 gid 0 mtime 0 size 4", "g": "mode 100644 uid 0 gid 0 mtime 0 size 4"},
		},
		{
			name: "hard links are not found across archives: the second is an empty file of its own",
			segs: [][]ent{{{name: "f", mode: reg | 0o644, ino: 9, nlink: 2, data: "data"}}, {{name: "g", mode: reg | 0o644, ino: 9, nlink: 2}}},
			want: map[string]string{"f": "mode 100644 uid 0 gid 0 mtime 0 size 4", "g": "mode 100644 uid 0 gid 0 mtime 0 size 0"},
		},
		{
			name: "a file over a file truncates the inode: a hard link to it changes too",
			segs: [][]ent{
				{{name: "f", mode: reg | 0o644, ino: 9, nlink: 2, data: "data"}, {name: "g", mode: reg | 0o644, ino: 9, nlink: 2}},
				{{name: "f", mode: reg | 0o600, mtime: 3, data: "new!!"}},
			},
			want: map[string]string{"f": "mode 100600 uid 0 gid 0 mtime 3 size 5", "g": "mode 100600 uid 0 gid 0 mtime 3 size 5"},
		},
		{
			name: "a symlink over an empty directory replaces it, and gets the directory's time at the end",
			segs: [][]ent{{{name: "d", mode: dir | 0o755, mtime: 10}}, {{name: "d", mode: link | 0o777, mtime: 20, data: "elsewhere"}}},
			want: map[string]string{"d": "mode 120777 uid 0 gid 0 mtime 10 -> elsewhere"},
		},
		{
			name: "a symlink over a directory that is not empty fails: the directory stays",
			segs: [][]ent{{{name: "d", mode: dir | 0o755, mtime: 10}, {name: "d/x", mode: reg | 0o644}}, {{name: "d", mode: link | 0o777, data: "elsewhere"}}},
			want: map[string]string{"d": "mode 040755 uid 0 gid 0 mtime 10", "d/x": "mode 100644"},
			errs: 1,
		},
		{
			name: "a file over a directory that is not empty fails",
			segs: [][]ent{{{name: "d", mode: dir | 0o755}, {name: "d/x", mode: reg | 0o644}}, {{name: "d", mode: reg | 0o644, data: "f"}}},
			want: map[string]string{"d": "mode 040755"},
			errs: 1,
		},
		{
			name: "a directory over a symlink replaces the symlink",
			segs: [][]ent{{{name: "t", mode: dir | 0o755}, {name: "d", mode: link | 0o777, data: "t"}}, {{name: "d", mode: dir | 0o700, mtime: 4}}},
			want: map[string]string{"d": "mode 040700 uid 0 gid 0 mtime 4", "t": "mode 040755"},
		},
		{
			name: "entries below a symlinked directory are written through it",
			segs: [][]ent{{{name: "usr", mode: dir | 0o755}, {name: "usr/lib", mode: dir | 0o755}, {name: "lib", mode: link | 0o777, data: "usr/lib"}},
				{{name: "lib/modules", mode: dir | 0o755, mtime: 8}}},
			want: map[string]string{"usr/lib/modules": "mode 040755 uid 0 gid 0 mtime 8", "lib/modules": "", "lib": "mode 120777"},
		},
		{
			name: "an entry whose parent is missing fails",
			segs: [][]ent{{{name: "a/b", mode: reg | 0o644}}},
			want: map[string]string{"a/b": ""},
			errs: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var segs [][]byte
			for _, s := range tc.segs {
				segs = append(segs, archive(t, s...))
			}
			fs := unpack(t, segs...)
			for p, want := range tc.want {
				n := fs.Nodes[p]
				switch {
				case want == "" && n != nil:
					t.Errorf("/%s = %s, want absent", p, n.Describe())
				case want != "" && n == nil:
					t.Errorf("/%s absent, want %s", p, want)
				case want != "" && !strings.HasPrefix(n.Describe(), want):
					t.Errorf("/%s = %s, want %s", p, n.Describe(), want)
				}
			}
			if len(fs.Errors) != tc.errs {
				t.Errorf("errors %q, want %d", fs.Errors, tc.errs)
			}
		})
	}
}

// TestStream: an uncompressed archive (as the microcode is), NUL padding
// and gzip members in one stream are all applied, in order.
func TestStream(t *testing.T) {
	var raw bytes.Buffer
	w := cpio.NewWriter(&raw)
	w.WriteHeader(&cpio.Header{Name: "kernel", Mode: dir | 0o755, NLink: 2, Ino: 1})
	w.Close()
	stream := append(raw.Bytes(), make([]byte, 8)...)
	stream = append(stream, archive(t, ent{name: "a", mode: dir | 0o700})...)
	stream = append(stream, archive(t, ent{name: "a", mode: dir | 0o755})...)
	fs, err := Unpack(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if fs.Nodes["kernel"] == nil || fs.Nodes["a"] == nil || fs.Nodes["a"].Mode != dir|0o755 {
		t.Errorf("unpacked %v", fs.Nodes)
	}
	if _, err := Unpack(bytes.NewReader(append(archive(t, ent{name: "a", mode: dir | 0o755}), 'x'))); err == nil {
		t.Error("junk after the archive was accepted")
	}
}

// TestDiff: every attribute Diff compares makes a difference.
func TestDiff(t *testing.T) {
	base := func() *FS {
		return unpack(t, archive(t,
			ent{name: ".", mode: dir | 0o755},
			ent{name: "f", mode: reg | 0o644, data: "x", ino: 3, nlink: 2},
			ent{name: "g", mode: reg | 0o644, ino: 3, nlink: 2},
			ent{name: "l", mode: link | 0o777, data: "f"}))
	}
	if d := Diff(base(), base()); len(d) != 0 {
		t.Fatalf("equal trees differ: %q", d)
	}
	for name, change := range map[string]func(fs *FS){
		"mode":    func(fs *FS) { fs.Nodes["l"].Mode = dir | 0o700 },
		"owner":   func(fs *FS) { fs.Nodes[""].UID = 1 },
		"time":    func(fs *FS) { fs.Nodes["l"].Mtime = 1 },
		"content": func(fs *FS) { fs.Nodes["f"].Sum[0]++ },
		"target":  func(fs *FS) { fs.Nodes["l"].Link = "g" },
		"links":   func(fs *FS) { c := *fs.Nodes["g"]; fs.Nodes["g"] = &c },
		"absent":  func(fs *FS) { delete(fs.Nodes, "l") },
	} {
		b := base()
		change(b)
		if d := Diff(base(), b); len(d) == 0 {
			t.Errorf("%s: no difference found", name)
		}
	}
}
