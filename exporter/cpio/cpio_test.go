package cpio

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

func writeSample(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	entries := []struct {
		h    Header
		data string
	}{
		{Header{Name: "etc", Mode: fstree.TypeDir | 0o755}, ""},
		{Header{Name: "etc/hosts", Mode: fstree.TypeFile | 0o644, UID: 1, GID: 2, Mtime: 1700000000}, "127.0.0.1 localhost\n"},
		{Header{Name: "etc/mtab", Mode: fstree.TypeLink | 0o777, Linkname: "/proc/mounts"}, ""},
		{Header{Name: "dev", Mode: fstree.TypeDir | 0o755}, ""},
		{Header{Name: "dev/null", Mode: fstree.TypeChar | 0o666, RDevMajor: 1, RDevMinor: 3}, ""},
		{Header{Name: "odd", Mode: fstree.TypeFile | 0o600}, "abc"},
	}
	for i, e := range entries {
		h := e.h
		h.Ino = uint32(i + 1)
		h.Size = int64(len(e.data))
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := writeSample(t)
	if len(data)%4 != 0 {
		t.Errorf("archive length %d is not 4-aligned", len(data))
	}
	r := NewReader(bytes.NewReader(data))
	var got []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r)
		got = append(got, h.Name+"|"+string(body)+"|"+h.Linkname)
		if h.Name == "dev/null" && (h.RDevMajor != 1 || h.RDevMinor != 3) {
			t.Errorf("dev/null device = %d:%d, want 1:3", h.RDevMajor, h.RDevMinor)
		}
		if h.Name == "etc/hosts" && (h.UID != 1 || h.GID != 2 || h.Mtime != 1700000000) {
			t.Errorf("etc/hosts header = %+v", h)
		}
	}
	want := "etc||,etc/hosts|127.0.0.1 localhost\n|,etc/mtab||/proc/mounts,dev||,dev/null||,odd|abc|"
	if strings.Join(got, ",") != want {
		t.Errorf("entries:\n got %q\nwant %q", strings.Join(got, ","), want)
	}
}

func TestShortWriteIsAnError(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.WriteHeader(&Header{Name: "f", Mode: fstree.TypeFile, Size: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a short entry succeeded")
	}
	if _, err := w.Write([]byte("abcdef")); err == nil {
		t.Fatal("writing past the entry size succeeded")
	}
}

// TestGNUCpioReadsIt checks the format against GNU cpio when installed.
func TestGNUCpioReadsIt(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio not installed")
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(writeSample(t))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Fields(string(out)), []string{"etc", "etc/hosts", "etc/mtab", "dev", "dev/null", "odd"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cpio -t = %v, want %v", got, want)
	}
}

// TestMtimeClamped: times outside newc's unsigned 32 bits are clamped, not
// wrapped (-1 would read back as 2106, 2^32 as 1970).
func TestMtimeClamped(t *testing.T) {
	for _, tc := range []struct{ in, want int64 }{
		{-1, 0}, {-1 << 40, 0}, {0, 0}, {1 << 32, 1<<32 - 1}, {1<<32 - 1, 1<<32 - 1}, {1 << 40, 1<<32 - 1}, {1700000000, 1700000000},
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.WriteHeader(&Header{Name: "f", Mode: fstree.TypeFile | 0o644, Mtime: tc.in}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		h, err := NewReader(bytes.NewReader(buf.Bytes())).Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Mtime != tc.want {
			t.Errorf("mtime %d written as %d, want %d", tc.in, h.Mtime, tc.want)
		}
	}
}

// TestConcatReader: archives one after the other, with NUL padding, read
// as one sequence of entries; the plain Reader stops at the first trailer.
func TestConcatReader(t *testing.T) {
	var buf bytes.Buffer
	for _, name := range []string{"a", "b"} {
		w := NewWriter(&buf)
		if err := w.WriteHeader(&Header{Name: name, Mode: fstree.TypeDir | 0o755, NLink: 2}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		buf.Write(make([]byte, 4))
	}
	for _, tc := range []struct {
		r    *Reader
		want string
	}{{NewConcatReader(bytes.NewReader(buf.Bytes())), "a b"}, {NewReader(bytes.NewReader(buf.Bytes())), "a"}} {
		var names []string
		for {
			h, err := tc.r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
		}
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("read %q, want %q", got, tc.want)
		}
	}
}
