package mkimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// The root filesystem comes from images and YAML that lkbuild does not
// control, and mkimage runs in the build daemon's namespace: a boot file
// that is a symlink to /dev/zero, /proc/self/mountinfo or the host's
// /etc/resolv.conf, a FIFO or a device must not be read from the host.
// Boot files are therefore resolved inside the root filesystem (as the
// booted system would see them: an absolute symlink target starts at the
// root filesystem's top), must end at a regular file, and are bounded in
// size.

// BootFile is one of the files under boot/ that the formats read.
type BootFile struct {
	Path   string // in the root filesystem, slash-separated, no leading "/"
	Max    int64  // largest size accepted, in bytes
	Origin string // where the YAML puts it there, for error messages
}

// The boot files and their limits. A kernel, even with a built-in
// initramfs, is tens of MiB; Linux takes a command line of a few KiB at
// most (COMMAND_LINE_SIZE).
var (
	KernelFile  = BootFile{"boot/kernel", 1 << 30, "the kernel section's image or a files entry with that path"}
	CmdlineFile = BootFile{"boot/cmdline", 64 << 10, "kernel.cmdline or a files entry with that path"}
	UCodeFile   = BootFile{"boot/ucode.cpio", 1 << 30, "kernel.ucode or a files entry with that path"}
)

// maxLinks is how many symlinks one lookup follows, as Linux's ELOOP limit.
const maxLinks = 40

// errAbsent marks a boot file that is not in the root filesystem at all.
var errAbsent = errors.New("not in the root filesystem")

// resolveInRoot looks rel up under root, following symlinks inside root:
// an absolute target starts again at root, ".." above root is refused. It
// returns the path found (relative to root, no symlink in it) and its
// Lstat. A lookup that fails on a component of rel itself, not of a link
// target, returns an error wrapping errAbsent.
func resolveInRoot(root, rel string) (string, fs.FileInfo, error) {
	type comp struct {
		name     string
		fromLink string // the link whose target holds it ("" for rel's own)
	}
	var pending []comp
	for _, c := range strings.Split(rel, "/") {
		pending = append(pending, comp{name: c})
	}
	var done []string
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c.name {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", nil, fmt.Errorf("the symlink %s leaves the root filesystem", c.fromLink)
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(path.Join(done...), c.name)
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(cur)))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				return "", nil, err
			}
			if c.fromLink == "" {
				return "", nil, fmt.Errorf("/%s: %w", cur, errAbsent)
			}
			full := cur
			for _, p := range pending {
				full = path.Join(full, p.name)
			}
			return "", nil, fmt.Errorf("the symlink %s points to /%s, which is not in the root filesystem", c.fromLink, full)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c.name)
			continue
		}
		links++
		if links > maxLinks {
			return "", nil, fmt.Errorf("more than %d symlinks on the way (a loop?)", maxLinks)
		}
		target, err := os.Readlink(filepath.Join(root, filepath.FromSlash(cur)))
		if err != nil {
			return "", nil, err
		}
		link := fmt.Sprintf("/%s -> %s", cur, target)
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		var next []comp
		for _, t := range strings.Split(target, "/") {
			next = append(next, comp{name: t, fromLink: link})
		}
		pending = append(next, pending...)
	}
	found := path.Join(done...)
	if found == "" {
		found = "."
	}
	fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(found)))
	if err != nil {
		return "", nil, err
	}
	return found, fi, nil
}

// found is a boot file located in the root filesystem.
type found struct {
	src  string // host path of the regular file, with no symlink in it
	size int64
}

// locate finds b in o's root filesystem. It returns nil, nil when b is
// absent (no such path), and an error naming b and its origin when b is
// there but is not a regular file inside the root filesystem within b.Max.
func (o Options) locate(b BootFile) (*found, error) {
	rel, fi, err := resolveInRoot(o.Input, b.Path)
	if errors.Is(err, errAbsent) {
		return nil, nil
	}
	if err == nil {
		switch {
		case !fi.Mode().IsRegular():
			err = fmt.Errorf("%s, not a regular file", fstree.TypeName(fi.Mode()))
			if rel != b.Path {
				err = fmt.Errorf("resolves to /%s, %s", rel, err)
			}
		case fi.Size() > b.Max:
			err = fmt.Errorf("%d bytes, more than the %d allowed", fi.Size(), b.Max)
		}
	}
	if err != nil {
		return nil, b.errorf(err)
	}
	return &found{src: filepath.Join(o.Input, filepath.FromSlash(rel)), size: fi.Size()}, nil
}

func (b BootFile) errorf(err error) error {
	return fmt.Errorf("/%s in the root filesystem: %w; it must be a regular file inside the root filesystem, and it comes from %s", b.Path, err, b.Origin)
}

// open opens a located boot file; the reader yields exactly f.size bytes
// or an error.
func (f *found) open() (io.ReadCloser, error) {
	in, err := fstree.OpenRegular(f.src)
	if err != nil {
		return nil, err
	}
	return &exactReader{f: in, r: io.LimitReader(in, f.size), left: f.size}, nil
}

// exactReader reads a file of a known size and fails if it ends early.
type exactReader struct {
	f    *os.File
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("%s: file changed size while being read", e.f.Name())
	}
	return n, err
}

func (e *exactReader) Close() error { return e.f.Close() }

// readBoot returns the contents of boot file b, or nil if it is absent.
func (o Options) readBoot(b BootFile) ([]byte, error) {
	f, err := o.locate(b)
	if f == nil {
		return nil, err
	}
	r, err := f.open()
	if err != nil {
		return nil, b.errorf(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, b.errorf(err)
	}
	return data, nil
}

// kernel locates boot/kernel, which a bootable format cannot do without.
func (o Options) kernel() (*found, error) {
	k, err := o.locate(KernelFile)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, errors.New("the image has no kernel (boot/kernel): a bootable format needs the YAML's kernel section")
	}
	return k, nil
}

// copyBoot copies boot file b to dst when it is present.
func (o Options) copyBoot(ctx context.Context, b BootFile, dst string) error {
	f, err := o.locate(b)
	if f == nil {
		return err
	}
	return writeFile(ctx, dst, func(w io.Writer) error { return f.copyTo(w, b) })
}

// appendBoot appends boot file b to w when it is present.
func (o Options) appendBoot(w io.Writer, b BootFile) error {
	f, err := o.locate(b)
	if f == nil {
		return err
	}
	return f.copyTo(w, b)
}

func (f *found) copyTo(w io.Writer, b BootFile) error {
	r, err := f.open()
	if err != nil {
		return b.errorf(err)
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("/%s: %w", b.Path, err)
	}
	return nil
}
