package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/frontend"
	"github.com/moby/buildkit/client"
	"golang.org/x/sys/unix"
)

// lkbuild build keeps the parts of the initrds it built in a cache of its
// own (formats.InitrdParts): it tells the frontend which parts it has, the
// frontend sends the manifest and only the others, and the client writes
// <name>-initrd.img from the parts, checking each one's SHA-256 as it
// copies it. An unchanged segment is thus neither concatenated in the
// build nor sent to the client again. The cache is a directory of files
// named by their hex SHA-256; builds share it (a shared flock on its lock
// file while they use it) and each one prunes it afterwards, least
// recently used first, to initrdCacheMaxBytes, never removing the parts of
// the build just done. A build running meanwhile that counted on a part
// pruned then asks the frontend once more (errPartGone), so pruning needs
// no exclusive lock and a busy cache cannot grow without bound; only the
// leftovers of killed builds are removed under the exclusive lock.

const (
	// InitrdCacheAuto is --initrd-cache's default: lkbuild/initrd-parts in
	// the user's cache directory ($XDG_CACHE_HOME, else ~/.cache).
	InitrdCacheAuto = "auto"
	// InitrdCacheNone turns the cache off: the initrd is sent whole.
	InitrdCacheNone = "none"
	// initrdCacheLock is the cache's lock file.
	initrdCacheLock = ".lock"
	// maxInitrdHave is the most parts a build says it has (the most
	// recently used first), within the frontend's limit.
	maxInitrdHave = 1024
)

// openCacheFor opens the initrd cache of fl for a directory output and
// asks the frontend, in attrs, for the initrd in parts; nil when the
// cache is off, the output is a tar file or kernel+initrd is not a
// target.
func openCacheFor(ctx context.Context, fl BuildOptions, exp output, attrs map[string]string) (*initrdCache, error) {
	if exp.typ != client.ExporterLocal || !buildsInitrdParts(fl.Target) {
		return nil, nil
	}
	dir, err := initrdCacheDir(fl.InitrdCache)
	if err == nil && dir == "" {
		return nil, nil
	}
	var c *initrdCache
	if err == nil {
		c, err = openInitrdCache(ctx, dir, fl.Log)
	}
	if err == nil {
		if attrs[frontend.OptInitrdParts], err = c.attr(); err != nil {
			c.close()
		}
	}
	if err != nil && fl.InitrdCache == InitrdCacheAuto && ctx.Err() == nil {
		// The default place may be unknown (no $HOME) or unwritable (a
		// read-only home): build without the cache rather than fail.
		fmt.Fprintf(fl.Log, "lkbuild: building without the initrd cache: %v\n", err)
		delete(attrs, frontend.OptInitrdParts)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// buildsInitrdParts tells whether the target list has the target whose
// initrd comes in parts. Only then are parts asked for and assembled: the
// output of another target (a tar target's root filesystem) may have a
// directory of the parts' name that is no manifest. A list that does not
// parse is left to the frontend to report.
func buildsInitrdParts(targets string) bool {
	ts, err := formats.Parse(targets)
	if err != nil {
		return false
	}
	for _, t := range ts {
		if t.Name == formats.InitrdPartsTarget {
			return true
		}
	}
	return false
}

// errPartGone says that a part the build counted on the cache for is not
// there (removed meanwhile, or damaged and removed): Build asks the
// frontend once more, for what the cache now has.
var errPartGone = errors.New("the part is gone from the cache: building again sends it")

// initrdCacheMaxBytes is the size the cache is pruned to.
var initrdCacheMaxBytes int64 = 4 << 30

// initrdCache is the cache while a build uses it.
type initrdCache struct {
	dir  string
	lock *os.File
	used map[string]bool // parts of this build's initrds
	log  io.Writer       // warnings (os.Stderr when nil)
	// recv is where ReceivePart writes the parts sent, outside the
	// cache until the initrd is written (as the exported files were).
	recv string
	// status adds a step to the build's progress (solve), or is nil.
	status func(*client.SolveStatus)
	// pending are the initrds being written while the build runs
	// (preassemble), by the SHA-256 of their manifest's bytes.
	mu      sync.Mutex
	pending map[string]*preassembly
	// private is set when only the user can write the cache
	// (privateDir); sums are the xxHashes of the parts whose bytes this
	// build checked (noteSum), by SHA-256.
	private bool
	sums    map[string]uint64
}

// initrdCacheDir resolves --initrd-cache: "" when it is off.
func initrdCacheDir(v string) (string, error) {
	switch v {
	case InitrdCacheNone, "":
		return "", nil
	case InitrdCacheAuto:
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("--initrd-cache auto: %w (give a directory or none)", err)
		}
		return filepath.Join(d, "lkbuild", "initrd-parts"), nil
	}
	return filepath.Abs(v)
}

// openInitrdCache creates dir if needed and takes its shared lock,
// waiting, with a message on log, while a build cleans it up (holds the
// lock exclusively), until ctx ends.
func openInitrdCache(ctx context.Context, dir string, log io.Writer) (*initrdCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("initrd cache: %w", err)
	}
	// The cache is used where its symlinks lead now, where privateDir
	// looks: one in a directory others can write could be re-pointed
	// during the build.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("initrd cache: %w", err)
	}
	l, err := os.OpenFile(filepath.Join(dir, initrdCacheLock), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("initrd cache: %w", err)
	}
	for waiting := false; ; {
		err := unix.Flock(int(l.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			l.Close()
			return nil, fmt.Errorf("initrd cache: locking %s: %w", dir, err)
		}
		if !waiting {
			fmt.Fprintf(log, "lkbuild: waiting for the initrd cache %s: another build is cleaning it up\n", dir)
			waiting = true
		}
		select {
		case <-ctx.Done():
			l.Close()
			return nil, fmt.Errorf("initrd cache: waiting for %s: %w", dir, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	return &initrdCache{dir: dir, lock: l, used: map[string]bool{}, log: log, private: privateDir(dir)}, nil
}

// cached lists the cache's parts, most recently used first.
func (c *initrdCache) cached() ([]fs.FileInfo, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("initrd cache: %w", err)
	}
	var parts []fs.FileInfo
	for _, e := range ents {
		if !formats.ValidSHA256(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			parts = append(parts, fi)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].ModTime().After(parts[j].ModTime()) })
	return parts, nil
}

// attr is the frontend option saying which parts the cache has.
func (c *initrdCache) attr() (string, error) {
	parts, err := c.cached()
	if err != nil {
		return "", err
	}
	var names []string
	for _, p := range parts {
		if len(names) == maxInitrdHave {
			break
		}
		names = append(names, p.Name())
	}
	sort.Strings(names)
	return "v1:" + strings.Join(names, ","), nil
}

// assemble writes the initrd of every manifest in the export directory
// stage (at its top or, for several platforms, one level down) from the
// parts sent and the cache's, puts the parts sent into the cache and
// removes the manifests' directories.
func (c *initrdCache) assemble(stage string) error {
	dirs := []string{stage}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != formats.InitrdPartsDir {
			dirs = append(dirs, filepath.Join(stage, e.Name()))
		}
	}
	for _, d := range dirs {
		if _, err := os.Lstat(filepath.Join(d, formats.InitrdPartsDir, formats.InitrdPartsManifest)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := c.assembleOne(d); err != nil {
			return err
		}
	}
	return nil
}

// assembleOne writes the initrd of dir's manifest.
func (c *initrdCache) assembleOne(dir string) error {
	pd := filepath.Join(dir, formats.InitrdPartsDir)
	mf := filepath.Join(pd, formats.InitrdPartsManifest)
	// What the daemon exported is not trusted to stay inside the output:
	// the parts' directory, the manifest and the parts sent must be a
	// directory and regular files, not symlinks to elsewhere.
	if fi, err := os.Lstat(pd); err != nil || !fi.IsDir() {
		return fmt.Errorf("the initrd's parts: %s is not a directory", formats.InitrdPartsDir)
	}
	b, err := readRegular(mf)
	if err != nil {
		return err
	}
	m, err := formats.ParseInitrdParts(b)
	if err != nil {
		return err
	}
	mfi, err := os.Lstat(mf)
	if err != nil {
		return err
	}
	// Writing the initrd and removing pd changes dir's time: it keeps the
	// time it was exported with, as without the cache.
	dfi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, m.Initrd)
	if pa := c.takePreassembly(b); pa != nil {
		// Written while the build ran (ReceiveParts).
		<-pa.done
		if pa.err == nil {
			if _, err := os.Lstat(dst); err == nil {
				pa.err = fmt.Errorf("writing the initrd: %s exists", m.Initrd)
			} else {
				pa.err = os.Rename(pa.path, dst)
			}
		}
		if pa.err != nil {
			os.Remove(pa.path)
			return fmt.Errorf("writing %s: %w", m.Initrd, pa.err)
		}
		for _, p := range m.Parts {
			c.used[p.SHA256] = true
		}
	} else {
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("writing the initrd: %w", err)
		}
		if err := c.writeParts(out, pd, m.Parts); err != nil {
			out.Close()
			return fmt.Errorf("writing %s: %w", m.Initrd, err)
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
	// The mode and time the exporter would have given it: the artifacts'
	// (the manifest is written with them), whatever the user's umask.
	if err := os.Chmod(dst, mfi.Mode().Perm()); err != nil {
		return err
	}
	if err := os.Chtimes(dst, mfi.ModTime(), mfi.ModTime()); err != nil {
		return err
	}
	for _, p := range m.Parts {
		// The initrd is written and checked: a part the cache cannot
		// take (a full or read-only cache) costs a later build only.
		src := filepath.Join(pd, p.SHA256)
		if _, err := os.Lstat(src); err != nil && c.recv != "" {
			src = filepath.Join(c.recv, p.SHA256)
		}
		if err := c.keep(src, p.SHA256, p.Size); err != nil {
			c.warn("part %s not kept: %v", p.SHA256, err)
		}
	}
	if err := os.RemoveAll(pd); err != nil {
		return err
	}
	return os.Chtimes(dir, dfi.ModTime(), dfi.ModTime())
}

// warn writes a warning about the cache to the build's log.
func (c *initrdCache) warn(format string, a ...any) {
	w := c.log
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "lkbuild: warning: initrd cache %s: "+format+"\n", append([]any{c.dir}, a...)...)
}

// writeParts writes parts to out, in order, from the parts exported (in
// pd) or received (in c.recv) or else the cache, checking each one's size
// and SHA-256. The copies stay in the kernel, one after the other; the
// SHA-256 checked is that of the bytes then read back from out, so a part
// replaced or changed while it is copied cannot pass the check with other
// bytes than it names. The read-backs run hashWorkers at a time, each
// while the next parts are copied: hashing is the slow half (SHA-256 of a
// 309 MB initrd: 0.27 s on one core here; its copy: 0.1 s). A damaged part
// in the cache is removed from it. The error is the first part's in
// order.
func (c *initrdCache) writeParts(out *os.File, pd string, parts []formats.InitrdPart) error {
	errs := make([]error, len(parts))
	sem := make(chan struct{}, hashWorkers)
	var wg sync.WaitGroup
	var next int64
	for i, p := range parts {
		// Each part goes at its offset in the manifest, whatever the
		// parts before it turned out to be.
		start := next
		next += p.Size
		src, fromCache, n, err := c.copyPart(out, start, pd, p)
		if err != nil {
			errs[i] = err
			if errors.Is(err, errPartGone) {
				// The others are still checked: the build asks
				// again once, for every damaged part at once.
				continue
			}
			break
		}
		// The copies never wait for the hashing: the parts copied queue
		// for a worker.
		wg.Add(1)
		go func(i int, p formats.InitrdPart, start int64) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.checkPart(out, start, n, src, fromCache, p)
		}(i, p, start)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return err
		}
		c.used[parts[i].SHA256] = true
	}
	return nil
}

// hashWorkers is how many parts writeParts hashes back at once.
const hashWorkers = 2

// copyPart copies part p, from the parts exported (in pd) or received or
// else the cache (findPart), to out at start (copyAt).
func (c *initrdCache) copyPart(out *os.File, start int64, pd string, p formats.InitrdPart) (string, bool, int64, error) {
	f, src, fromCache, err := c.findPart(p, pd, c.recv)
	if err != nil {
		return "", false, 0, err
	}
	defer f.Close()
	n, err := copyAt(out, start, f, p)
	return src, fromCache, n, err
}

// findPart opens part p in the first of dirs that has it (an empty one is
// skipped), else in the cache (fromCache). A part in none of them is
// errPartGone; a cache entry that is not a regular file is
// replacedInCache.
func (c *initrdCache) findPart(p formats.InitrdPart, dirs ...string) (f *os.File, src string, fromCache bool, err error) {
	err = fs.ErrNotExist
	for _, d := range append(dirs, c.dir) {
		if d == "" || !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		src, fromCache = filepath.Join(d, p.SHA256), d == c.dir
		f, err = openPart(src)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", false, fmt.Errorf("part %s: neither sent nor in the initrd cache (removed from it during the build?): %w", p.SHA256, errPartGone)
	case fromCache && errors.Is(err, errNotRegular):
		return nil, "", false, replacedInCache(p, err)
	case err != nil:
		return nil, "", false, fmt.Errorf("part %s: %w", p.SHA256, err)
	}
	return f, src, fromCache, nil
}

// copyAt copies part p from f to out at off and returns how many bytes of
// it f has: one more than p.Size when f is longer (that byte is not
// copied), which checkPart then reports. Only one goroutine moves out's
// offset: the parts received are written at theirs (WriteAt).
func copyAt(out *os.File, off int64, f *os.File, p formats.InitrdPart) (int64, error) {
	if _, err := out.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(f, p.Size))
	if err != nil {
		return 0, fmt.Errorf("part %s: %w", p.SHA256, err)
	}
	if n == p.Size {
		if m, _ := f.ReadAt(make([]byte, 1), n); m > 0 {
			n++
		}
	}
	return n, nil
}

// replacedInCache is the error for the cache's entry of part p that is
// no longer a regular file (err): the cache's list left it out, so the
// build asked again is sent the part, and keeps it in the entry's place.
func replacedInCache(p formats.InitrdPart, err error) error {
	return fmt.Errorf("part %s: %v in the initrd cache (replaced during the build?): %w", p.SHA256, err, errPartGone)
}

// checkPart checks the n bytes of part p written at start of out, which
// came from src (the cache when fromCache): against the xxHash the cache
// recorded for it when there is one to trust (recordedSum), else against
// its SHA-256, noting its xxHash then (noteSum).
func (c *initrdCache) checkPart(out *os.File, start, n int64, src string, fromCache bool, p formats.InitrdPart) error {
	r, buf := io.NewSectionReader(out, start, n), make([]byte, 1<<20)
	if fromCache && n == p.Size {
		if want, ok := c.recordedSum(src, p); ok {
			x := xxhash.New()
			if _, err := io.CopyBuffer(x, r, buf); err != nil {
				return fmt.Errorf("part %s: reading it back: %w", p.SHA256, err)
			}
			if got := x.Sum64(); got != want {
				return c.damaged(src, fromCache, p, fmt.Sprintf("xxHash %016x, recorded %016x", got, want))
			}
			return nil
		}
	}
	h, x := sha256.New(), xxhash.New()
	if _, err := io.CopyBuffer(io.MultiWriter(h, x), r, buf); err != nil {
		return fmt.Errorf("part %s: reading it back: %w", p.SHA256, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n == p.Size && got == p.SHA256 {
		c.noteSum(p.SHA256, x.Sum64())
		return nil
	}
	what := fmt.Sprintf("SHA-256 %s", got)
	switch {
	case n > p.Size:
		what = fmt.Sprintf("more than its %d bytes", p.Size)
	case n < p.Size:
		what = fmt.Sprintf("%d bytes of %d", n, p.Size)
	}
	return c.damaged(src, fromCache, p, what)
}

// damaged is the error for part p, from src, whose bytes are not what
// the manifest says (what they are instead): a cached one is removed from
// the cache, with its xxHash, and the build is asked again.
func (c *initrdCache) damaged(src string, fromCache bool, p formats.InitrdPart, what string) error {
	if fromCache {
		os.Remove(src)
		os.Remove(src + sumSuffix)
		return fmt.Errorf("part %s in the initrd cache %s is damaged (%s): it was removed: %w", p.SHA256, c.dir, what, errPartGone)
	}
	return fmt.Errorf("part %s as sent is damaged (%s)", p.SHA256, what)
}

// keep moves the part sent at src (when it was sent) into the cache, and
// marks the cache's copy as just used (its time orders the pruning).
func (c *initrdCache) keep(src, name string, size int64) error {
	dst := filepath.Join(c.dir, name)
	if _, err := os.Lstat(src); err == nil {
		if err := moveEntry(src, dst); err != nil {
			return err
		}
	}
	now := time.Now()
	if err := os.Chtimes(dst, now, now); err != nil {
		return err
	}
	return c.recordSum(name, size)
}

// close prunes the cache to initrdCacheMaxBytes, least recently used
// first, keeping the parts of this build, removes the leftovers of killed
// builds when no other build uses the cache, and releases the lock.
func (c *initrdCache) close() {
	defer c.lock.Close()
	c.dropPreassemblies()
	c.prune()
	if err := unix.Flock(int(c.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return
	}
	// Leftovers of a build killed while copying a part in (moveEntry).
	if ents, err := os.ReadDir(c.dir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), copyPrefix) {
				os.RemoveAll(filepath.Join(c.dir, e.Name()))
			}
		}
	}
}

// prune removes the least recently used parts but this build's until the
// cache holds at most initrdCacheMaxBytes.
func (c *initrdCache) prune() {
	parts, err := c.cached()
	if err != nil {
		return
	}
	var total int64
	for _, p := range parts {
		total += p.Size()
	}
	for i := len(parts) - 1; i >= 0 && total > initrdCacheMaxBytes; i-- {
		if c.used[parts[i].Name()] {
			continue
		}
		if os.Remove(filepath.Join(c.dir, parts[i].Name())) == nil {
			os.Remove(filepath.Join(c.dir, parts[i].Name()+sumSuffix))
			total -= parts[i].Size()
		}
	}
	// The xxHash files of parts gone (removed by another build, or by
	// hand).
	ents, _ := os.ReadDir(c.dir)
	for _, e := range ents {
		if n := e.Name(); isSumFile(n) {
			if _, err := os.Lstat(filepath.Join(c.dir, strings.TrimSuffix(n, sumSuffix))); errors.Is(err, fs.ErrNotExist) {
				os.Remove(filepath.Join(c.dir, n))
			}
		}
	}
}

// openPart opens a part (openRegular; tests replace it).
var openPart = openRegular

// errNotRegular is in openRegular's error for what is not a regular file.
var errNotRegular = errors.New("not a regular file")

// openRegular opens the regular file at p without following a symlink
// there (fs.ErrNotExist when there is nothing at p).
func openRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s is a symlink: %w", filepath.Base(p), errNotRegular)
		}
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is %w", filepath.Base(p), errNotRegular)
	}
	return f, nil
}

// readRegular reads the regular file at p (openRegular).
func readRegular(p string) ([]byte, error) {
	f, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
