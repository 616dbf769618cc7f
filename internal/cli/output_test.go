package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tree writes files (name -> content; a trailing / makes a directory)
// under dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns every file (content), symlink (-> target) and
// directory (/) under dir.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.IsDir():
			out[rel] = "/"
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "-> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		default:
			out[rel] = fi.Mode().Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMergeIntoKeepsData: the artifacts replace their own files only; the
// output directory's other files, in the same directories too, stay (a
// tree target's etc/ used to replace the whole existing etc/).
func TestMergeIntoKeepsData(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	tree(t, dst, map[string]string{"etc/keep": "mine", "etc/passwd": "old", "notes.txt": "mine", "linux_amd64/old-kernel": "k", "home/user/": ""})
	tree(t, src, map[string]string{"etc/passwd": "new", "etc/new": "new", "linux_amd64/x-kernel": "new", "home/": "", "bin/sh": "sh"})
	if err := os.Symlink("/proc/mounts", filepath.Join(src, "etc/mtab")); err != nil {
		t.Fatal(err)
	}
	if err := mergeInto(src, dst); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, dst)
	for p, want := range map[string]string{
		"etc/keep": "mine", "etc/passwd": "new", "etc/new": "new", "etc/mtab": "-> /proc/mounts", "notes.txt": "mine",
		"linux_amd64/old-kernel": "k", "linux_amd64/x-kernel": "new", "home/user": "/", "bin/sh": "sh",
	} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
}

// TestMergeIntoConflicts: an entry of the output directory that is not of
// the artifact's kind fails the commit before anything is moved, and a
// symlink in the output directory is never written through.
func TestMergeIntoConflicts(t *testing.T) {
	host := t.TempDir() // stands for a directory of the host, e.g. /etc
	tree(t, host, map[string]string{"passwd": "host"})
	for name, setup := range map[string]func(dst string) error{
		"file where the artifact is a directory": func(dst string) error {
			return os.WriteFile(filepath.Join(dst, "etc"), []byte("mine"), 0o644)
		},
		"symlink where the artifact is a directory": func(dst string) error {
			return os.Symlink(host, filepath.Join(dst, "etc"))
		},
		"directory where the artifact is a file": func(dst string) error {
			return os.MkdirAll(filepath.Join(dst, "a-file", "mine"), 0o755)
		},
	} {
		src, dst := t.TempDir(), t.TempDir()
		tree(t, src, map[string]string{"etc/passwd": "new", "a-file": "artifact", "z-first": "z"})
		if err := setup(dst); err != nil {
			t.Fatal(err)
		}
		before := readTree(t, dst)
		err := mergeInto(src, dst)
		if err == nil || !strings.Contains(err.Error(), "was left as it was") || !strings.Contains(err.Error(), "would lose data") {
			t.Errorf("%s: error %v, want a conflict", name, err)
		}
		if after := readTree(t, dst); len(after) != len(before) || after["z-first"] != "" {
			t.Errorf("%s: the output directory changed: %v -> %v", name, before, after)
		}
		if b, _ := os.ReadFile(filepath.Join(host, "passwd")); string(b) != "host" {
			t.Fatalf("%s: a file was written through a symlink of the output directory", name)
		}
	}

	// Names lkbuild uses at the top of the output directory are refused.
	src, dst := t.TempDir(), t.TempDir()
	tree(t, src, map[string]string{lockName: "x"})
	if err := mergeInto(src, dst); err == nil || !strings.Contains(err.Error(), "a name lkbuild uses") {
		t.Errorf("an artifact named %s: %v", lockName, err)
	}
}

// TestMergeIntoAcrossFilesystems: when the output directory is on another
// filesystem than the export, the artifacts are copied with their modes,
// owners, times, symlinks, hard links and special files, and replace the
// old ones (the rename used to fail with EXDEV after the old artifact was
// deleted).
func TestMergeIntoAcrossFilesystems(t *testing.T) {
	dst := tmpfsDir(t)
	src := t.TempDir()
	tree(t, dst, map[string]string{"x-kernel": "old kernel", "etc/keep": "mine"})
	tree(t, src, map[string]string{"x-kernel": "new kernel", "etc/passwd": "root", "usr/bin/su": "su", "dir/": ""})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("../usr/bin/su", filepath.Join(src, "etc/su")))
	must(os.Link(filepath.Join(src, "usr/bin/su"), filepath.Join(src, "usr/bin/su2")))
	must(syscall.Mkfifo(filepath.Join(src, "usr/fifo"), 0o640))
	must(os.Chmod(filepath.Join(src, "usr/bin/su"), 0o755|os.ModeSetuid))
	must(os.Chmod(filepath.Join(src, "dir"), 0o555))
	must(os.Lchown(filepath.Join(src, "etc/passwd"), 1234, 5678))
	mtime := time.Date(2017, 4, 18, 16, 30, 0, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "etc/passwd"), mtime, mtime))
	must(os.Chtimes(filepath.Join(src, "usr/bin"), mtime, mtime))

	if err := mergeInto(src, dst); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, dst)
	for p, want := range map[string]string{
		"x-kernel": "new kernel", "etc/keep": "mine", "etc/passwd": "root", "etc/su": "-> ../usr/bin/su",
		"usr/bin/su": "su", "usr/bin/su2": "su", "usr/fifo": "p---------", "dir": "/",
	} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	stat := func(p string) *syscall.Stat_t {
		var st syscall.Stat_t
		must(syscall.Lstat(filepath.Join(dst, p), &st))
		return &st
	}
	if su, su2 := stat("usr/bin/su"), stat("usr/bin/su2"); su.Ino != su2.Ino {
		t.Error("a hard link became a copy")
	}
	if m := stat("usr/bin/su").Mode & 0o7777; m != 0o4755 {
		t.Errorf("usr/bin/su mode %o, want 4755", m)
	}
	if m := stat("dir").Mode & 0o7777; m != 0o555 {
		t.Errorf("dir mode %o, want 555", m)
	}
	if m := stat("usr/fifo").Mode & 0o7777; m != 0o640 {
		t.Errorf("usr/fifo mode %o, want 640", m)
	}
	if st := stat("etc/passwd"); os.Geteuid() == 0 && (st.Uid != 1234 || st.Gid != 5678) {
		t.Errorf("etc/passwd owner %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
	for _, p := range []string{"etc/passwd", "usr/bin"} {
		if fi, err := os.Lstat(filepath.Join(dst, p)); err != nil || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s time %v, want %v", p, fi.ModTime(), mtime)
		}
	}
	for name := range got {
		if strings.HasPrefix(filepath.Base(name), ".lkbuild") {
			t.Errorf("%s left in the output directory", name)
		}
	}
}

// TestOutputDirLock: a second build into the same directory waits, saying
// which process it waits for, until the first has moved its artifacts in
// and removed the lock.
func TestOutputDirLock(t *testing.T) {
	old := lockPoll
	lockPoll = 10 * time.Millisecond
	t.Cleanup(func() { lockPoll = old })
	dir := filepath.Join(t.TempDir(), "out")
	ctx := context.Background()
	first, err := openOutputDir(ctx, dir, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	done := make(chan *outputDir)
	go func() {
		second, err := openOutputDir(ctx, dir, "", &log)
		if err != nil {
			t.Error(err)
		}
		done <- second
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "waiting") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	want := "lkbuild: waiting for another build writing into " + dir + " (pid " + strconv.Itoa(os.Getpid()) + ") to finish\n"
	if log.String() != want {
		t.Errorf("log %q, want %q", log.String(), want)
	}
	select {
	case <-done:
		t.Fatal("the second build did not wait for the first")
	case <-time.After(100 * time.Millisecond):
	}
	tree(t, first.tmp, map[string]string{"a": "first"})
	if err := first.commit(); err != nil {
		t.Fatal(err)
	}
	first.close(true)
	second := <-done
	if second == nil {
		t.FailNow()
	}
	second.close(false)
	if got := readTree(t, dir); len(got) != 1 || got["a"] != "first" {
		t.Errorf("output directory %v, want only the first build's artifact", got)
	}

	// A context ending stops the wait.
	third, err := openOutputDir(ctx, dir, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer third.close(true)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := openOutputDir(cctx, dir, "", &bytes.Buffer{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting with a cancelled context: %v", err)
	}
}

// TestOutputDirLockSymlink: a lock file that is a symlink is not followed.
func TestOutputDirLockSymlink(t *testing.T) {
	dir, host := t.TempDir(), t.TempDir()
	target := filepath.Join(host, "victim")
	if err := os.WriteFile(target, []byte("host data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, lockName)); err != nil {
		t.Fatal(err)
	}
	if o, err := openOutputDir(context.Background(), dir, "", &bytes.Buffer{}); err == nil {
		o.close(true)
		t.Error("a symlinked lock file was opened")
	}
	if b, _ := os.ReadFile(target); string(b) != "host data" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// TestOutputDirCleanup: a failed build removes the directories it created
// for the output, and nothing else; a build holding the lock removes
// temporary directories left by killed builds.
func TestOutputDirCleanup(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "out")
	o, err := openOutputDir(context.Background(), dir, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o.close(false)
	if got := readTree(t, root); len(got) != 0 {
		t.Errorf("a failed build left %v", got)
	}

	tree(t, dir, map[string]string{"mine": "x", tmpPrefix + "123/rootfs/etc/passwd": "stale"})
	o, err = openOutputDir(context.Background(), dir, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o.close(false)
	if got := readTree(t, dir); len(got) != 1 || got["mine"] != "x" {
		t.Errorf("output directory %v, want only mine (no stale export, no lock)", got)
	}
}

// TestTarOutputReplaces: a tar output replaces the file atomically and
// refuses a directory of that name.
func TestTarOutputReplaces(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "rootfs.tar")
	tree(t, dir, map[string]string{"rootfs.tar": "old", "other": "mine"})
	o, err := openOutputDir(context.Background(), dir, dest, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	tree(t, o.tmp, map[string]string{tarName: "new"})
	if err := o.commit(); err != nil {
		t.Fatal(err)
	}
	o.close(true)
	if got := readTree(t, dir); len(got) != 2 || got["rootfs.tar"] != "new" || got["other"] != "mine" {
		t.Errorf("directory %v", got)
	}
	tree(t, dir, map[string]string{"d.tar/": ""})
	o, err = openOutputDir(context.Background(), dir, filepath.Join(dir, "d.tar"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	tree(t, o.tmp, map[string]string{tarName: "new"})
	if err := o.commit(); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a tar output onto a directory: %v", err)
	}
	o.close(false)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReplaceEntry: an artifact replacing an existing entry is exchanged
// with it (renameat2), so the old one must not stay behind at the
// artifact's old path, a symlink replaced must not be written through, and
// another hard link of the old file keeps the old bytes.
func TestReplaceEntry(t *testing.T) {
	host := t.TempDir()
	tree(t, host, map[string]string{"passwd": "host"})
	src, dst := t.TempDir(), t.TempDir()
	tree(t, src, map[string]string{"initrd": "new", "mtab": "new mtab", "fresh": "fresh"})
	tree(t, dst, map[string]string{"initrd": "old"})
	if err := os.Link(filepath.Join(dst, "initrd"), filepath.Join(dst, "initrd.bak")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(host, "passwd"), filepath.Join(dst, "mtab")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"initrd", "mtab", "fresh"} {
		if err := replaceEntry(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	got := readTree(t, dst)
	for p, want := range map[string]string{"initrd": "new", "initrd.bak": "old", "mtab": "new mtab", "fresh": "fresh"} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	if left := readTree(t, src); len(left) != 0 {
		t.Errorf("the replaced entries stayed behind: %v", left)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "passwd")); string(b) != "host" {
		t.Error("a file was written through a symlink of the output directory")
	}
}
