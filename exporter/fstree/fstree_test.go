package fstree

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCopyContentsRefusesIrregular: the writers copy a path that Walk saw
// as a regular file; if the tree holds something else there by the time
// it is read (a symlink to /dev/zero, a FIFO), CopyContents must fail at
// once instead of following the link or blocking on the FIFO for ever.
func TestCopyContentsRefusesIrregular(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	toGood := filepath.Join(dir, "to-good")
	if err := os.Symlink("good", toGood); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := CopyContents(&out, good, 8, nil); err != nil || out.String() != "contents" {
		t.Fatalf("regular file: %q, %v", out.String(), err)
	}
	for name, want := range map[string]string{
		zero:   "a symlink",
		toGood: "a symlink",
		fifo:   "a FIFO",
		sub:    "a directory",
	} {
		done := make(chan error, 1)
		go func() { done <- CopyContents(&bytes.Buffer{}, name, 8, nil) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want one saying %q", filepath.Base(name), err, want)
			}
		case <-time.After(5 * time.Second):
			// Unblock the reader so the test process can end.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("%s: CopyContents still blocked after 5s", filepath.Base(name))
		}
	}
}

func TestTypeName(t *testing.T) {
	for m, want := range map[os.FileMode]string{
		0o644:                             "a regular file",
		os.ModeDir:                        "a directory",
		os.ModeSymlink:                    "a symlink",
		os.ModeNamedPipe:                  "a FIFO",
		os.ModeSocket:                     "a socket",
		os.ModeDevice | os.ModeCharDevice: "a character device",
		os.ModeDevice:                     "a block device",
		os.ModeIrregular:                  "an irregular file",
	} {
		if got := TypeName(m); got != want {
			t.Errorf("TypeName(%v) = %q, want %q", m, got, want)
		}
	}
}
