package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/frontend"
	"golang.org/x/sys/unix"
)

// openTestCache opens the initrd cache in dir for a test and closes it
// when the test ends.
func openTestCache(t *testing.T, dir string) *initrdCache {
	t.Helper()
	c, err := openInitrdCache(context.Background(), dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// sum is a part's name: its hex SHA-256.
func sum(b []byte) string { return sha256Hex(b) }

// stageParts writes, in dir, a manifest of parts (in order) and the parts
// listed in sent.
func stageParts(t *testing.T, dir string, parts [][]byte, sent map[int]bool) formats.InitrdParts {
	t.Helper()
	pd := filepath.Join(dir, formats.InitrdPartsDir)
	if err := os.MkdirAll(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	m := formats.InitrdParts{Initrd: "sys-initrd.img"}
	for i, p := range parts {
		m.Parts = append(m.Parts, formats.InitrdPart{SHA256: sum(p), Size: int64(len(p)), Segment: i})
		if sent[i] {
			if err := os.WriteFile(filepath.Join(pd, sum(p)), p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, _ := json.Marshal(m)
	mf := filepath.Join(pd, formats.InitrdPartsManifest)
	if err := os.WriteFile(mf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1234, 0)
	if err := os.Chtimes(mf, mt, mt); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestInitrdCacheAssemble: the first build's parts are all sent and kept;
// the second build's unchanged parts come from the cache; the initrd is
// their concatenation, with the artifacts' time, and the parts' directory
// is gone. The cache's attribute lists what it has.
func TestInitrdCacheAssemble(t *testing.T) {
	cacheDir := t.TempDir()
	parts := [][]byte{[]byte("UCODE"), bytes.Repeat([]byte("a"), 1000), []byte("base")}
	build := func(parts [][]byte, sent map[int]bool, sub string) []byte {
		t.Helper()
		c := openTestCache(t, cacheDir)
		stage := t.TempDir()
		dir := filepath.Join(stage, sub)
		stageParts(t, dir, parts, sent)
		if err := c.assemble(stage); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, formats.InitrdPartsDir)); err == nil {
			t.Error("the parts' directory is left in the output")
		}
		fi, err := os.Stat(filepath.Join(dir, "sys-initrd.img"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().Unix() != 1234 || fi.Mode().Perm() != 0o644 {
			t.Errorf("initrd: time %v, mode %v", fi.ModTime(), fi.Mode())
		}
		b, _ := os.ReadFile(filepath.Join(dir, "sys-initrd.img"))
		return b
	}
	if got := build(parts, map[int]bool{0: true, 1: true, 2: true}, ""); !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Errorf("first build: %q", got)
	}
	c, err := openInitrdCache(context.Background(), cacheDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	attr, _ := c.attr()
	c.close()
	for _, p := range parts {
		if !strings.Contains(attr, sum(p)) || !strings.HasPrefix(attr, "v1:") {
			t.Errorf("attr %q lacks %s", attr, sum(p))
		}
	}
	// A changed last part, the others from the cache, for a platform's
	// sub-directory.
	parts2 := [][]byte{parts[0], parts[1], []byte("base v2")}
	if got := build(parts2, map[int]bool{2: true}, "linux_amd64"); !bytes.Equal(got, bytes.Join(parts2, nil)) {
		t.Errorf("second build: %q", got)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, sum(parts2[2]))); err != nil {
		t.Errorf("the part sent is not in the cache: %v", err)
	}
}

// TestInitrdCacheDamagedPart: a part whose bytes no longer match its name
// fails the build, naming it, and is removed from the cache; a part
// neither sent nor cached fails it too. Nothing is left half-written to
// be mistaken for the initrd: the error stops the build before its
// artifacts are moved in place.
func TestInitrdCacheDamagedPart(t *testing.T) {
	cacheDir := t.TempDir()
	part := []byte("segment")
	if err := os.WriteFile(filepath.Join(cacheDir, sum(part)), []byte("segmenT"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := openTestCache(t, cacheDir)
	stage := t.TempDir()
	stageParts(t, stage, [][]byte{part}, nil)
	err := c.assemble(stage)
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), sum(part)) || !errors.Is(err, errPartGone) {
		t.Fatalf("damaged part: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, sum(part))); err == nil {
		t.Error("the damaged part is still in the cache")
	}
	stage = t.TempDir()
	stageParts(t, stage, [][]byte{part}, nil)
	if err := c.assemble(stage); err == nil || !strings.Contains(err.Error(), "neither sent nor in the initrd cache") || !errors.Is(err, errPartGone) {
		t.Errorf("missing part: %v", err)
	}
}

// TestInitrdCachePrune: the cache is pruned to its size, least recently
// used first, never removing the parts of the build just done, also while
// another build uses it (which asks again for a part it counted on,
// errPartGone); a killed build's leftovers go only when no build uses it.
func TestInitrdCachePrune(t *testing.T) {
	cacheDir := t.TempDir()
	big := func(c byte) []byte { return bytes.Repeat([]byte{c}, 1<<20) }
	old, recent, mine := big('o'), big('r'), big('m')
	now := time.Now()
	for i, p := range [][]byte{old, recent, mine} {
		f := filepath.Join(cacheDir, sum(p))
		if err := os.WriteFile(f, p, 0o600); err != nil {
			t.Fatal(err)
		}
		// mine is the oldest of all, but this build used it.
		mt := now.Add(time.Duration(i-3) * time.Hour)
		if i == 2 {
			mt = now.Add(-10 * time.Hour)
		}
		os.Chtimes(f, mt, mt)
	}
	defer func(m int64) { initrdCacheMaxBytes = m }(initrdCacheMaxBytes)
	initrdCacheMaxBytes = 2 << 20
	other, err := openInitrdCache(context.Background(), cacheDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := openInitrdCache(context.Background(), cacheDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(cacheDir, copyPrefix+"killed")
	if err := os.Mkdir(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	c.used[sum(mine)] = true
	c.close() // prunes though another build holds the cache: 3 MiB > 2 MiB
	for p, want := range map[string]bool{"old": false, "recent": true, "mine": true} {
		b := map[string][]byte{"old": old, "recent": recent, "mine": mine}[p]
		_, err := os.Stat(filepath.Join(cacheDir, sum(b)))
		if (err == nil) != want {
			t.Errorf("%s kept = %v, want %v", p, err == nil, want)
		}
	}
	if _, err := os.Stat(leftover); err != nil {
		t.Error("a killed build's leftover was removed while another build used the cache")
	}
	other.close() // alone: removes the leftover too
	if _, err := os.Stat(leftover); err == nil {
		t.Error("a killed build's leftover stays")
	}
}

// TestInitrdCacheDir: auto is under the user's cache directory, none and
// "" turn the cache off.
func TestInitrdCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	for v, want := range map[string]string{"auto": "/x/cache/lkbuild/initrd-parts", "none": "", "": "", "/a/b": "/a/b"} {
		got, err := initrdCacheDir(v)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", v, got, err, want)
		}
	}
}

// TestInitrdCacheUnusable: the default cache in an unwritable place is
// skipped with a message; a cache directory the user named fails the
// build.
func TestInitrdCacheUnusable(t *testing.T) {
	ro := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(ro, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", ro) // a file: the cache cannot be made under it
	var log bytes.Buffer
	attrs := map[string]string{}
	c, err := openCacheFor(context.Background(), BuildOptions{InitrdCache: InitrdCacheAuto, Log: &log}, output{typ: "local"}, attrs)
	if err != nil || c != nil || !strings.Contains(log.String(), "without the initrd cache") || len(attrs) != 0 {
		t.Errorf("auto: cache %v, err %v, log %q, attrs %v", c, err, log.String(), attrs)
	}
	if _, err := openCacheFor(context.Background(), BuildOptions{InitrdCache: filepath.Join(ro, "x"), Log: &log}, output{typ: "local"}, attrs); err == nil {
		t.Error("a named cache directory that cannot be made: no error")
	}
	if c, err := openCacheFor(context.Background(), BuildOptions{InitrdCache: t.TempDir(), Log: &log}, output{typ: "tar"}, attrs); c != nil || err != nil {
		t.Errorf("tar output: cache %v, err %v", c, err)
	}
}

// TestInitrdCacheRefusesLinks: what the daemon exported is not followed
// out of the output: a parts directory, manifest or part that is a
// symlink (or not a regular file) fails the build, and the file it points
// to is neither read into the initrd nor moved.
func TestInitrdCacheRefusesLinks(t *testing.T) {
	part := []byte("segment")
	outside := t.TempDir()
	for name, setup := range map[string]func(t *testing.T, stage string){
		"parts directory": func(t *testing.T, stage string) {
			other := t.TempDir()
			stageParts(t, other, [][]byte{part}, map[int]bool{0: true})
			if err := os.Symlink(filepath.Join(other, formats.InitrdPartsDir), filepath.Join(stage, formats.InitrdPartsDir)); err != nil {
				t.Fatal(err)
			}
		},
		"manifest": func(t *testing.T, stage string) {
			stageParts(t, stage, [][]byte{part}, map[int]bool{0: true})
			mf := filepath.Join(stage, formats.InitrdPartsDir, formats.InitrdPartsManifest)
			b, _ := os.ReadFile(mf)
			os.WriteFile(filepath.Join(outside, "m.json"), b, 0o644)
			os.Remove(mf)
			if err := os.Symlink(filepath.Join(outside, "m.json"), mf); err != nil {
				t.Fatal(err)
			}
		},
		"part": func(t *testing.T, stage string) {
			stageParts(t, stage, [][]byte{part}, nil)
			os.WriteFile(filepath.Join(outside, sum(part)), part, 0o644)
			if err := os.Symlink(filepath.Join(outside, sum(part)), filepath.Join(stage, formats.InitrdPartsDir, sum(part))); err != nil {
				t.Fatal(err)
			}
		},
		"fifo part": func(t *testing.T, stage string) {
			stageParts(t, stage, [][]byte{part}, nil)
			if err := unix.Mkfifo(filepath.Join(stage, formats.InitrdPartsDir, sum(part)), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := openTestCache(t, t.TempDir())
			stage := t.TempDir()
			setup(t, stage)
			if err := c.assemble(stage); err == nil {
				t.Error("assembled through a link or a special file")
			}
			if _, err := os.Stat(filepath.Join(outside, sum(part))); name == "part" && err != nil {
				t.Errorf("the file outside was moved: %v", err)
			}
		})
	}
}

// TestInitrdCacheAutoUnresolvable: auto where the user's cache directory
// cannot be found ($XDG_CACHE_HOME relative, no $HOME) builds without the
// cache, with a message, as an unwritable one does; it used to fail the
// build.
func TestInitrdCacheAutoUnresolvable(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "relative/cache")
	var log bytes.Buffer
	attrs := map[string]string{}
	c, err := openCacheFor(context.Background(), BuildOptions{InitrdCache: InitrdCacheAuto, Log: &log}, output{typ: "local"}, attrs)
	if err != nil || c != nil || !strings.Contains(log.String(), "without the initrd cache") || len(attrs) != 0 {
		t.Errorf("auto: cache %v, err %v, log %q, attrs %v", c, err, log.String(), attrs)
	}
}

// TestInitrdCacheKeepFails: a part that cannot be kept in the cache (its
// name taken by a directory; likewise a full or read-only cache on
// another filesystem) does not fail the build: the initrd, already
// written and checked, is the same, and a warning names the part.
func TestInitrdCacheKeepFails(t *testing.T) {
	cacheDir := t.TempDir()
	parts := [][]byte{[]byte("UCODE"), []byte("base")}
	if err := os.Mkdir(filepath.Join(cacheDir, sum(parts[1])), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := openInitrdCache(context.Background(), cacheDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	c.log = &log
	defer c.close()
	stage := t.TempDir()
	stageParts(t, stage, parts, map[int]bool{0: true, 1: true})
	if err := c.assemble(stage); err != nil {
		t.Fatalf("assemble: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(stage, "sys-initrd.img")); !bytes.Equal(b, bytes.Join(parts, nil)) {
		t.Errorf("initrd %q", b)
	}
	if !strings.Contains(log.String(), "warning") || !strings.Contains(log.String(), sum(parts[1])) {
		t.Errorf("log %q", log.String())
	}
	if _, err := os.Stat(filepath.Join(stage, formats.InitrdPartsDir)); err == nil {
		t.Error("the parts' directory is left in the output")
	}
	if _, err := os.Stat(filepath.Join(cacheDir, sum(parts[0]))); err != nil {
		t.Errorf("the other part is not kept: %v", err)
	}
}

// TestInitrdCacheKeepsDirTime: assembling a platform's initrd leaves its
// directory's time as exported (as with --initrd-cache none), not the
// time the initrd was written.
func TestInitrdCacheKeepsDirTime(t *testing.T) {
	c := openTestCache(t, t.TempDir())
	stage := t.TempDir()
	dir := filepath.Join(stage, "linux_arm64")
	stageParts(t, dir, [][]byte{[]byte("base")}, map[int]bool{0: true})
	mt := time.Unix(5678, 0)
	if err := os.Chtimes(dir, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := c.assemble(stage); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mt) {
		t.Errorf("directory time %v, want %v", fi.ModTime(), mt)
	}
}

// TestInitrdCacheModeIgnoresUmask: the initrd gets the mode the artifacts
// were exported with (the manifest's), whatever the user's umask, as
// BuildKit's export gives it without the cache; under umask 077 it was
// 0600.
func TestInitrdCacheModeIgnoresUmask(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	c := openTestCache(t, t.TempDir())
	stage := t.TempDir()
	stageParts(t, stage, [][]byte{[]byte("base")}, map[int]bool{0: true})
	if err := os.Chmod(filepath.Join(stage, formats.InitrdPartsDir, formats.InitrdPartsManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.assemble(stage); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(stage, "sys-initrd.img"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("initrd mode %v, want 0644", fi.Mode().Perm())
	}
}

// TestInitrdCacheHashesWhatIsWritten: the SHA-256 checked is that of the
// bytes written into the initrd. A cached part replaced while it is read
// (here: each open of it sees another file, as when a rename replaces it
// between two opens, or bytes change in place between two reads) must not
// pass the check with bytes that do not match it; it used to, as the
// part was opened twice, once to copy it and once to hash it.
func TestInitrdCacheHashesWhatIsWritten(t *testing.T) {
	cacheDir := t.TempDir()
	good := []byte("the segment")
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("the segmenX"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cacheDir, sum(good)), good, 0o644); err != nil {
		t.Fatal(err)
	}
	opens := 0
	defer func(f func(string) (*os.File, error)) { openPart = f }(openPart)
	openPart = func(p string) (*os.File, error) {
		if filepath.Base(p) == sum(good) && filepath.Dir(p) == cacheDir {
			if opens++; opens == 1 {
				return os.Open(bad) // the first open sees the damaged bytes
			}
		}
		return openRegular(p)
	}
	c := openTestCache(t, cacheDir)
	stage := t.TempDir()
	stageParts(t, stage, [][]byte{good}, nil)
	err := c.assemble(stage)
	b, _ := os.ReadFile(filepath.Join(stage, "sys-initrd.img"))
	if err == nil && !bytes.Equal(b, good) {
		t.Fatalf("the initrd %q passed the check, want %q or an error", b, good)
	}
}

// TestInitrdCacheOnlyForKernelInitrd: the cache is used, and made, only
// when kernel+initrd is among the targets. Other targets ask for no
// parts, so a directory of theirs named like the parts' (a tar target's
// root filesystem with /etc/.lkbuild-initrd-parts/manifest.json) was
// taken for a manifest: removed, and an initrd written next to it.
func TestInitrdCacheOnlyForKernelInitrd(t *testing.T) {
	for target, want := range map[string]bool{"": true, "kernel+initrd": true, "uki, kernel+initrd": true, "tar": false, "iso-efi": false, "iso-efi,uki": false} {
		dir := filepath.Join(t.TempDir(), "cache")
		attrs := map[string]string{}
		c, err := openCacheFor(context.Background(), BuildOptions{Target: target, InitrdCache: dir, Log: io.Discard}, output{typ: "local"}, attrs)
		if err != nil {
			t.Fatalf("%q: %v", target, err)
		}
		if c != nil {
			c.close()
		}
		_, statErr := os.Stat(dir)
		_, asked := attrs[frontend.OptInitrdParts]
		if (c != nil) != want || asked != want || (statErr == nil) != want {
			t.Errorf("%q: cache %v, asked for parts %v, cache made %v; want %v", target, c != nil, asked, statErr == nil, want)
		}
	}
}

// TestInitrdCacheLockWait: a build waiting for the cache's lock (held
// exclusively by a build cleaning it up) says so and stops when it is
// interrupted; it used to wait in flock, silent, through Ctrl-C.
func TestInitrdCacheLockWait(t *testing.T) {
	dir := t.TempDir()
	l, err := os.OpenFile(filepath.Join(dir, initrdCacheLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := unix.Flock(int(l.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var log bytes.Buffer
	done := make(chan error, 1)
	go func() {
		c, err := openInitrdCache(ctx, dir, &log)
		if c != nil {
			c.close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(log.String(), "waiting for the initrd cache") {
			t.Errorf("err %v, log %q", err, log.String())
		}
	case <-time.After(5 * time.Second):
		unix.Flock(int(l.Fd()), unix.LOCK_UN)
		<-done
		t.Fatal("still waiting for the lock after the build was interrupted")
	}
}

// TestInitrdCacheLockNoFollow: the cache's lock file is not opened
// through a symlink (as the output directory's is not): one planted in a
// shared cache directory made the build create the file it points to.
func TestInitrdCacheLockNoFollow(t *testing.T) {
	dir, elsewhere := t.TempDir(), filepath.Join(t.TempDir(), "created")
	if err := os.Symlink(elsewhere, filepath.Join(dir, initrdCacheLock)); err != nil {
		t.Fatal(err)
	}
	c, err := openInitrdCache(context.Background(), dir, io.Discard)
	if c != nil {
		c.close()
	}
	if _, serr := os.Lstat(elsewhere); err == nil || serr == nil {
		t.Errorf("lock through a symlink: err %v, the file it points to made: %v", err, serr == nil)
	}
}

// TestInitrdCacheLargePart: a part of several MiB is written and
// checked whole; the same part with one byte more in the cache is
// damaged, and so is one with a byte changed in its last chunk.
func TestInitrdCacheLargePart(t *testing.T) {
	part := bytes.Repeat([]byte("0123456789abcdef"), (2*recvChunk+3)/16+1)[:2*recvChunk+3]
	for name, tc := range map[string]struct {
		cached []byte
		ok     bool
	}{
		"whole":   {part, true},
		"longer":  {append(append([]byte{}, part...), 'x'), false},
		"changed": {append(append([]byte{}, part[:len(part)-1]...), 'x'), false},
	} {
		t.Run(name, func(t *testing.T) {
			cacheDir := t.TempDir()
			if err := os.WriteFile(filepath.Join(cacheDir, sum(part)), tc.cached, 0o644); err != nil {
				t.Fatal(err)
			}
			c := openTestCache(t, cacheDir)
			stage := t.TempDir()
			stageParts(t, stage, [][]byte{[]byte("ucode"), part}, map[int]bool{0: true})
			err := c.assemble(stage)
			if tc.ok {
				b, _ := os.ReadFile(filepath.Join(stage, "sys-initrd.img"))
				if err != nil || !bytes.Equal(b, append([]byte("ucode"), part...)) {
					t.Errorf("err %v, initrd of %d bytes", err, len(b))
				}
			} else if err == nil || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("err %v", err)
			}
		})
	}
}
