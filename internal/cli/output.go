package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The output directory (-o DIR) never loses data: a build exports into a
// temporary directory inside DIR (so moving the artifacts in place is a
// rename on DIR's filesystem), and moves in each artifact file by itself,
// replacing only the file of the same name, atomically. An existing
// directory of DIR is kept and merged into, never deleted; an entry of DIR
// that is not of the artifact's kind (a directory where the artifact is a
// file, a symlink where it is a directory) fails the build before anything
// is moved. Symlinks in DIR are never followed. Where a rename crosses
// filesystems (a mount point inside DIR), the artifact is copied next to
// its destination and renamed over it. A build holds DIR's lock from
// before it starts until its artifacts are in place, so a second build
// into the same DIR waits for the first instead of mixing their files.

const (
	// lockName is DIR's lock file, present while a build writes into DIR.
	lockName = ".lkbuild.lock"
	// tmpPrefix starts the names of the temporary directories a build
	// exports into inside DIR; one left by a build that was killed is
	// removed by the next build that holds the lock.
	tmpPrefix = ".lkbuild-out-"
	// tarTmpPrefix starts the temporary directory of a tar output, next to
	// the tar file.
	tarTmpPrefix = ".lkbuild-tar-"
	// copyPrefix starts the names of copies made across filesystems before
	// they are renamed into place.
	copyPrefix = ".lkbuild-copy-"
)

// lockPoll is how often a build waiting for DIR's lock tries again.
var lockPoll = 200 * time.Millisecond

// outputDir is DIR while a build writes into it, or the directory of a
// tar file (-o type=tar,dest=FILE).
type outputDir struct {
	dir     string   // absolute
	tarFile string   // the tar file, for a tar output
	tmp     string   // the export's temporary directory, inside dir
	scratch string   // another one, for files kept apart from the export (scratchDir)
	lock    *os.File // nil for a tar output or where dir cannot be locked
	created []string // directories created for dir, deepest first
}

// openOutputDir creates dir if needed and makes the temporary directory
// the build exports into. For a directory output (tarFile "") it first
// waits for dir's lock, saying so on log.
func openOutputDir(ctx context.Context, dir, tarFile string, log io.Writer) (*outputDir, error) {
	o := &outputDir{dir: dir, tarFile: tarFile}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		o.created = append(o.created, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	prefix := tarTmpPrefix
	if tarFile == "" {
		prefix = tmpPrefix
		lock, err := lockDir(ctx, dir, log)
		if err != nil {
			o.close(false)
			return nil, err
		}
		if o.lock = lock; lock != nil {
			removeStale(dir)
		}
	}
	var err error
	if o.tmp, err = os.MkdirTemp(dir, prefix); err != nil {
		o.close(false)
		return nil, fmt.Errorf("output directory: %w", err)
	}
	return o, nil
}

// commit moves the export's artifacts into place.
func (o *outputDir) commit() error {
	if o.tarFile == "" {
		return mergeInto(o.tmp, o.dir)
	}
	if fi, err := os.Lstat(o.tarFile); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory: the tar output names a file", o.tarFile)
	}
	if err := moveEntry(filepath.Join(o.tmp, tarName), o.tarFile); err != nil {
		return fmt.Errorf("writing %s: %w", o.tarFile, err)
	}
	return nil
}

// reset empties the temporary directory, for the build to export into it
// again.
func (o *outputDir) reset() error {
	if err := os.RemoveAll(o.tmp); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if err := os.Mkdir(o.tmp, 0o700); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	return nil
}

// scratchDir returns a temporary directory next to the export's, for
// files that are not artifacts (removed with it by close).
func (o *outputDir) scratchDir() (string, error) {
	if o.scratch == "" {
		d, err := os.MkdirTemp(o.dir, tmpPrefix)
		if err != nil {
			return "", fmt.Errorf("output directory: %w", err)
		}
		o.scratch = d
	}
	return o.scratch, nil
}

// close removes the temporary directory and the lock; after a failed
// build (ok false) it also removes the directories created for dir when
// they are empty, so a failed build leaves nothing behind.
func (o *outputDir) close(ok bool) {
	if o.tmp != "" {
		os.RemoveAll(o.tmp)
	}
	if o.scratch != "" {
		os.RemoveAll(o.scratch)
	}
	if o.lock != nil {
		os.Remove(filepath.Join(o.dir, lockName))
		o.lock.Close()
	}
	if !ok {
		for _, d := range o.created {
			if os.Remove(d) != nil {
				break
			}
		}
	}
}

// lockDir takes dir's lock, waiting while another build holds it. On a
// filesystem without locks it says so and goes on without one.
func lockDir(ctx context.Context, dir string, log io.Writer) (*os.File, error) {
	name := filepath.Join(dir, lockName)
	waiting := false
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
		if err != nil {
			return nil, fmt.Errorf("locking the output directory: %w", err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			// The holder before us removes the file before unlocking it:
			// the lock counts only on the file that is still there.
			if sameFile(f, name) {
				f.Truncate(0)
				f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
				return f, nil
			}
			f.Close()
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			if !waiting {
				pid, _ := os.ReadFile(name)
				fmt.Fprintf(log, "lkbuild: waiting for another build writing into %s (pid %s) to finish\n", dir, strings.TrimSpace(string(pid)))
				waiting = true
			}
			f.Close()
		default:
			f.Close()
			os.Remove(name)
			fmt.Fprintf(log, "lkbuild: warning: %s cannot be locked (%v): a concurrent build into it would not wait\n", dir, err)
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// sameFile tells whether f is the file at name.
func sameFile(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(name)
	return err == nil && os.SameFile(a, b)
}

// removeStale removes the temporary directories that killed builds left
// in dir: with dir's lock held, no running build owns one.
func removeStale(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() && (strings.HasPrefix(e.Name(), tmpPrefix) || strings.HasPrefix(e.Name(), copyPrefix)) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// reserved tells whether name, at the top of the output directory, is one
// lkbuild uses there.
func reserved(name string) bool {
	return name == lockName || strings.HasPrefix(name, tmpPrefix) || strings.HasPrefix(name, copyPrefix)
}

// move is one entry of the export to move into the output directory.
type move struct{ from, to string }

// mergeInto moves every entry of src into dst: an entry dst does not have
// is moved whole, a directory dst has is merged into, and a file (or
// symlink, device ...) replaces dst's non-directory of the same name.
// Conflicts are found before anything is moved.
func mergeInto(src, dst string) error {
	var moves []move
	var conflicts []string
	var walk func(rel string) error
	walk = func(rel string) error {
		ents, err := os.ReadDir(filepath.Join(src, rel))
		if err != nil {
			return err
		}
		for _, e := range ents {
			r := filepath.Join(rel, e.Name())
			from, to := filepath.Join(src, r), filepath.Join(dst, r)
			if rel == "" && reserved(e.Name()) {
				conflicts = append(conflicts, fmt.Sprintf("%s (a name lkbuild uses in the output directory)", to))
				continue
			}
			fi, err := os.Lstat(to)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				moves = append(moves, move{from, to})
			case err != nil:
				return err
			case e.IsDir() && fi.IsDir():
				if err := walk(r); err != nil {
					return err
				}
			case e.IsDir() || fi.IsDir():
				conflicts = append(conflicts, fmt.Sprintf("%s (%s; the artifact is %s)", to, kind(fi.Mode()), kind(e.Type())))
			default:
				moves = append(moves, move{from, to})
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return fmt.Errorf("reading the build's output: %w", err)
	}
	if len(conflicts) > 0 {
		more := ""
		if len(conflicts) > 5 {
			more = fmt.Sprintf(" and %d more", len(conflicts)-5)
			conflicts = conflicts[:5]
		}
		return fmt.Errorf("the output directory %s was left as it was: replacing these entries with the build's would lose data: %s%s (remove them or choose another output directory)",
			dst, strings.Join(conflicts, ", "), more)
	}
	for _, m := range moves {
		if err := moveEntry(m.from, m.to); err != nil {
			return fmt.Errorf("writing %s: %w", m.to, err)
		}
	}
	return nil
}

// kind names a file type for messages.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m.IsRegular():
		return "a file"
	}
	return "a special file"
}

// moveEntry renames from to to, replacing a non-directory at to. Across
// filesystems it copies from next to to, then renames the copy over to, so
// to is replaced at once or not at all.
func moveEntry(from, to string) error {
	err := replaceEntry(from, to)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(to), copyPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	c := filepath.Join(tmp, "entry")
	if err := copyEntry(from, c, map[devIno]string{}); err != nil {
		return err
	}
	return replaceEntry(c, to)
}

// replaceEntry renames from to to at once. When to is a non-directory the
// two are exchanged (renameat2 RENAME_EXCHANGE, Linux 3.15) and the old
// entry, now at from, is removed: a rename over an existing file makes
// ext4 (its auto_da_alloc default) allocate the new file's blocks before
// it returns, 0.23 s for a 309 MB initrd just written, while the exchange
// is as atomic and leaves the writeback to the kernel. Where the exchange
// is not supported (EINVAL: the filesystem; ENOSYS, EPERM: the kernel or
// a seccomp filter) it renames.
func replaceEntry(from, to string) error {
	if fi, err := os.Lstat(to); err == nil && !fi.IsDir() {
		err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_EXCHANGE)
		if err == nil {
			// to is in place: the old entry left at from is only
			// garbage, which the caller's temporary directory takes
			// when it cannot be removed here.
			os.Remove(from)
			return nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return &os.LinkError{Op: "renameat2 exchange", Old: from, New: to, Err: err}
		}
	}
	return os.Rename(from, to)
}

type devIno struct{ dev, ino uint64 }

// copyEntry copies the file, symlink, special file or directory tree at
// from to the new path to, keeping modes, owners (when allowed), times and
// the hard links inside the tree (links maps the files copied so far).
func copyEntry(from, to string, links map[devIno]string) error {
	fi, err := os.Lstat(from)
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && !fi.IsDir() && st.Nlink > 1 {
		id := devIno{uint64(st.Dev), st.Ino}
		if first, ok := links[id]; ok {
			return os.Link(first, to) // its metadata is the first's
		}
		links[id] = to
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		if err := os.Mkdir(to, 0o700); err != nil {
			return err
		}
		ents, err := os.ReadDir(from)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyEntry(filepath.Join(from, e.Name()), filepath.Join(to, e.Name()), links); err != nil {
				return err
			}
		}
	case m.IsRegular():
		if err := copyFile(from, to); err != nil {
			return err
		}
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, to); err != nil {
			return err
		}
	default:
		if st == nil {
			return fmt.Errorf("%s: cannot copy %s", from, kind(m))
		}
		if err := unix.Mknod(to, uint32(st.Mode), int(st.Rdev)); err != nil {
			return err
		}
	}
	return setMeta(to, fi, st)
}

func copyFile(from, to string) error {
	r, err := os.Open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// setMeta gives to the owner, mode and times of fi: the owner only where
// the user may set it (as root), the mode after the owner (chown clears
// setuid bits).
func setMeta(to string, fi fs.FileInfo, st *syscall.Stat_t) error {
	symlink := fi.Mode()&fs.ModeSymlink != 0
	if st != nil {
		if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	if !symlink {
		if err := os.Chmod(to, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
	}
	mt := unix.NsecToTimespec(fi.ModTime().UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, to, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW)
}
