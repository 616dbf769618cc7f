package llbgen

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
)

// withFiles applies the files section on top of the root filesystem, in
// YAML order. Missing parent directories are created with the entry's mode
// plus x where r or w is set, as LinuxKit does; unlike LinuxKit, parents
// that already exist keep their mode and owner (see docs/compat.md).
func (b *builder) withFiles(rootfs llb.State, ids map[string]uint32) (llb.State, error) {
	st := rootfs
	for i, f := range b.cfg.Files {
		fa, err := b.fileAction(f, ids)
		if err != nil {
			return llb.State{}, fmt.Errorf("files[%d] (%s): %w", i, f.Path, err)
		}
		if fa == nil {
			continue
		}
		fa = b.touch(fa, withParents(path.Dir(path.Join("/", f.Path)))...)
		st = st.File(fa, llb.WithCustomNamef("[files] %s", f.Path), b.at(f.Pos))
	}
	return st, nil
}

// fileModes returns a files entry's mode as st_mode bits (LinuxKit's
// defaults: 0600, 0700 for a directory) and the mode of the parents it
// creates: the entry's plus x where r or w is set.
func fileModes(f *spec.File) (mode, dirMode os.FileMode, err error) {
	mode = 0o600
	if f.Directory {
		mode = 0o700
	}
	if f.Mode != "" {
		m, err := strconv.ParseUint(f.Mode, 8, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("mode %q is not an octal number", f.Mode)
		}
		mode = os.FileMode(m)
	}
	dirMode = mode
	for _, bits := range []os.FileMode{0o700, 0o070, 0o007} {
		if mode&bits != 0 {
			dirMode |= bits & 0o111
		}
	}
	return mode, dirMode, nil
}

func (b *builder) fileAction(f *spec.File, ids map[string]uint32) (*llb.FileAction, error) {
	p := path.Join("/", f.Path)
	mode, dirMode, err := fileModes(f)
	if err != nil {
		return nil, err
	}
	uid, err := spec.ResolveID(f.UID, ids)
	if err != nil {
		return nil, fmt.Errorf("uid: %w", err)
	}
	gid, err := spec.ResolveID(f.GID, ids)
	if err != nil {
		return nil, fmt.Errorf("gid: %w", err)
	}
	owner := llb.WithUIDGID(int(uid), int(gid))
	ct := llb.WithCreatedTime(b.epoch())
	perm := mode.Perm()
	// special holds the setuid, setgid and sticky bits as st_mode has them
	// (04000, 02000, 01000): Mkfile and Mkdir keep only the permission
	// bits, so entries with any of them are copied with a chmod instead,
	// which applies them after the chown (see withSpecialBits).
	special := mode & 0o7000
	fa := llb.Mkdir(path.Dir(p), dirMode.Perm(), llb.WithParents(true), owner, ct)
	if b.replaceFiles[f] {
		// A symlink of the images is at p: replace it, as LinuxKit's tar
		// does, rather than write through it.
		fa = fa.Rm(p)
	}
	switch {
	case f.Directory:
		// Copied with a chmod even without special bits: a directory that
		// exists gets the entry's mode, owner and time, as LinuxKit's tar
		// (and the kernel unpacking it) gives it; Mkdir would leave it.
		return b.withSpecialBits(fa, p, mode, nil, uid, gid), nil
	case f.Symlink != "":
		return fa.Rm(p, llb.WithAllowNotFound(true)).Symlink(f.Symlink, p, owner, ct), nil
	case f.Contents != nil && special != 0:
		return b.withSpecialBits(fa, p, mode, []byte(*f.Contents), uid, gid), nil
	case f.Contents != nil:
		return fa.Mkfile(p, perm, []byte(*f.Contents), owner, ct), nil
	case f.Source != "":
		// Copy the file the source names after its symlinks, as LinuxKit
		// reads it (ResolveSources); an optional source that is missing or
		// outside the context makes nothing, not even the parents. The
		// source is named literally: no wildcard.
		file, ok := b.opt.Sources[ContextPath(f.Source)]
		if !ok || OutsideContext(f.Source) != "" {
			if f.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("source %q was not resolved in the build context", f.Source)
		}
		if b.opt.Context == nil {
			return nil, fmt.Errorf("source %q: no build context", f.Source)
		}
		ctm := b.epoch()
		ci := &llb.CopyInfo{
			Mode:                           &llb.ChmodOpt{Mode: perm | special},
			ChownOpt:                       &llb.ChownOpt{User: &llb.UserOpt{UID: int(uid)}, Group: &llb.UserOpt{UID: int(gid)}},
			CreatedTime:                    &ctm,
			AlwaysReplaceExistingDestPaths: true,
		}
		return fa.Copy(*b.opt.Context, "/"+file, p, ci), nil
	case f.Metadata != "":
		dt, err := spec.Metadata(b.cfg, f.Metadata)
		if err != nil {
			return nil, err
		}
		if special != 0 {
			return b.withSpecialBits(fa, p, mode, dt, uid, gid), nil
		}
		return fa.Mkfile(p, perm, dt, owner, ct), nil
	}
	return nil, fmt.Errorf("no contents, source, metadata, directory or symlink")
}

// ContextPath is the path of a files[].source in the build context, clean
// and relative to its root: the key of Options.Sources. It is meaningful
// only for a source inside the context (see OutsideContext).
func ContextPath(source string) string {
	return path.Clean(source)
}

// OutsideContext tells why source cannot name a file of the build context,
// or "" when it can: an absolute path and a path starting with "~/" (which
// LinuxKit reads from the host, expanding ~ to the home directory) and a
// path that climbs out of the context with "..". lkbuild reads sources from
// the build context only.
func OutsideContext(source string) string {
	switch p := path.Clean(source); {
	case strings.HasPrefix(source, "~/"):
		return source + " is outside the build context (sources are read from the context only; ~ is not expanded)"
	case path.IsAbs(p), p == "..", strings.HasPrefix(p, "../"):
		return source + " is outside the build context (sources are read from the context only)"
	}
	return ""
}

// isSource tells whether f copies a file from the build context.
func isSource(f *spec.File) bool {
	return f.Source != "" && !f.Directory && f.Symlink == "" && f.Contents == nil
}

// SourcePaths lists the build context paths that files[].source names,
// sorted and without duplicates: the only paths a build reads from the
// context (the frontend transfers them and the targets of symlinks among
// them). Sources outside the context and the context's root, which
// ResolveSources refuses or skips without reading the context, are left
// out. The paths are literal: glob characters in them are not patterns.
func SourcePaths(cfg *spec.Config) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range cfg.Files {
		if !isSource(f) || OutsideContext(f.Source) != "" {
			continue
		}
		p := ContextPath(f.Source)
		if p == "." {
			continue
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// ContextEntry is what ResolveSources needs to know of a path in the
// build context.
type ContextEntry struct {
	Mode     os.FileMode // type and permission bits
	Linkname string      // the target of a symlink
}

// ContextLstat returns the entry at p (clean, slash separated, relative to
// the context root) without following p itself when it is a symlink; the
// directories leading to p are never symlinks. It returns an error wrapping
// fs.ErrNotExist when p does not exist.
type ContextLstat func(ctx context.Context, p string) (ContextEntry, error)

// maxSymlinks bounds the symlinks followed for one source, as the kernel
// bounds path lookups (ELOOP).
const maxSymlinks = 40

// missingError is a source, or a symlink's target, that does not exist.
type missingError struct{ msg string }

func (e missingError) Error() string { return e.msg }

// lookupError is a failure to read the build context, not a fault of the
// YAML.
type lookupError struct{ error }

// ResolveSources follows the symlinks of every files[].source in the build
// context, component by component, as LinuxKit reads the file a symlink
// points to, and returns the regular file each source names (keyed by
// ContextPath). Sources stay confined to the context: a source outside it
// (OutsideContext), a symlink to an absolute path or one whose target
// climbs out of the context is an error, as are a directory and a missing
// source or dangling symlink. An optional source that is missing or
// dangling is left out of the map (LinuxKit skips it), and so is an
// optional source outside the context, with a warning through warn (nil:
// none): LinuxKit would read it from the host when it is there. Errors are
// spec.Errors at the sources' YAML positions, all at once; the context is
// read only for the sources inside it.
func ResolveSources(ctx context.Context, cfg *spec.Config, lstat ContextLstat, warn func(Warning)) (map[string]string, error) {
	out := map[string]string{}
	var errs spec.Errors
	for i, f := range cfg.Files {
		if !isSource(f) {
			continue
		}
		pos, field := sourceAt(f, i)
		if msg := OutsideContext(f.Source); msg != "" {
			if !f.Optional {
				errs = append(errs, &spec.Error{File: pos.File, Line: pos.Line, Col: pos.Col, Field: field, Msg: msg})
			} else if warn != nil {
				warn(Warning{Pos: pos, Field: field, Msg: msg + ": skipped (optional: true)"})
			}
			continue
		}
		key := ContextPath(f.Source)
		file, err := resolveSource(ctx, lstat, key)
		var missing missingError
		switch {
		case err == nil:
			out[key] = file
			continue
		case errors.As(err, &missing) && f.Optional:
			continue
		case errors.As(err, &missing):
			err = fmt.Errorf("%w (optional: true skips a missing source)", err)
		}
		var le lookupError
		if errors.As(err, &le) { // the context could not be read: not the YAML's fault
			return nil, le.error
		}
		errs = append(errs, &spec.Error{File: pos.File, Line: pos.Line, Col: pos.Col, Field: field, Msg: err.Error()})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// sourceAt is where the source of f, the i-th merged files entry, is
// written, and its field path in its own file.
func sourceAt(f *spec.File, i int) (spec.Pos, string) {
	entry := f.Field
	if entry == "" {
		entry = fmt.Sprintf("files[%d]", i)
	}
	return f.At("source"), entry + ".source"
}

// sourceStep is one path element still to resolve and the symlink whose
// target it comes from ("" for the source itself).
type sourceStep struct{ name, via string }

func steps(p, via string) []sourceStep {
	var out []sourceStep
	for _, n := range strings.Split(p, "/") {
		if n != "" && n != "." {
			out = append(out, sourceStep{n, via})
		}
	}
	return out
}

// resolveSource resolves src (a ContextPath) to the regular file it names.
func resolveSource(ctx context.Context, lstat ContextLstat, src string) (string, error) {
	// through names the source when the symlink at fault is further along.
	through := func(link string) string {
		if strings.HasPrefix(link, src+" -> ") {
			return ""
		}
		return src + ": "
	}
	todo := steps(src, "")
	cur, links := "", 0 // cur: the resolved prefix, free of symlinks
	isDir := true       // the context root is a directory
	for len(todo) > 0 {
		st := todo[0]
		todo = todo[1:]
		if st.name == ".." {
			if cur == "" {
				return "", fmt.Errorf("%ssymlink %s leaves the build context (lkbuild reads sources from the build context only)", through(st.via), st.via)
			}
			if cur = path.Dir(cur); cur == "." {
				cur = ""
			}
			isDir = true
			continue
		}
		next := path.Join(cur, st.name)
		e, err := lstat(ctx, next)
		if errors.Is(err, fs.ErrNotExist) {
			if st.via != "" {
				return "", missingError{fmt.Sprintf("%ssymlink %s is dangling: %s does not exist in the build context", through(st.via), st.via, next)}
			}
			return "", missingError{src + " does not exist in the build context"}
		}
		if err != nil {
			return "", lookupError{fmt.Errorf("reading %s in the build context: %w", next, err)}
		}
		if e.Mode&os.ModeSymlink != 0 {
			link := next + " -> " + e.Linkname
			if links++; links > maxSymlinks {
				return "", fmt.Errorf("%s: too many levels of symlinks (at %s)", src, link)
			}
			if path.IsAbs(e.Linkname) {
				return "", fmt.Errorf("%ssymlink %s points to an absolute path, which is not followed (lkbuild reads sources from the build context only: use a relative symlink inside it)", through(link), link)
			}
			todo = append(steps(e.Linkname, link), todo...)
			continue
		}
		if len(todo) > 0 && !e.Mode.IsDir() {
			return "", missingError{fmt.Sprintf("%s is not a directory, so %s does not exist", next, src)}
		}
		cur, isDir = next, e.Mode.IsDir()
		if len(todo) == 0 && !isDir && !e.Mode.IsRegular() {
			return "", fmt.Errorf("%s is not a regular file", cur)
		}
	}
	if isDir {
		switch {
		case cur == src:
			return "", fmt.Errorf("%s is a directory (a source must be a file)", src)
		case cur == "":
			return "", fmt.Errorf("%s leads to the root of the build context (a source must be a file)", src)
		}
		return "", fmt.Errorf("%s leads to the directory %s (a source must be a file)", src, cur)
	}
	return cur, nil
}

// withSpecialBits adds to fa the files entry at p: a regular file holding
// data whose mode has setuid, setgid or sticky bits, or any directory entry
// (data nil). BuildKit's Mkfile and Mkdir mask the mode to 0777, so the
// entry is made in a scratch state and copied with a chmod to the full
// mode (the mode is passed as st_mode bits, which BuildKit's copy applies
// after the chown, so the kernel does not clear them). A directory that
// exists gets the entry's mode, owner and time, as in LinuxKit's tar.
func (b *builder) withSpecialBits(fa *llb.FileAction, p string, mode os.FileMode, data []byte, uid, gid uint32) *llb.FileAction {
	name := path.Base(p)
	// Fixed times: the copy's cache key covers the source's contents,
	// times included, so a time of the build would defeat the cache.
	t := b.epoch()
	ct := llb.WithCreatedTime(t)
	src := llb.Mkdir("/entry", 0o755, ct)
	if data == nil {
		src = src.Mkdir(path.Join("/entry", name), 0o700, ct)
	} else {
		src = src.Mkfile(path.Join("/entry", name), 0o600, data, ct)
	}
	return fa.Copy(llb.Scratch().File(src, llb.WithCustomNamef("[files] %s (mode %04o)", p, uint32(mode))), "/entry", path.Dir(p), &llb.CopyInfo{
		Mode:                           &llb.ChmodOpt{Mode: mode & 0o7777},
		ChownOpt:                       &llb.ChownOpt{User: &llb.UserOpt{UID: int(uid)}, Group: &llb.UserOpt{UID: int(gid)}},
		CreatedTime:                    &t,
		CopyDirContentsOnly:            true,
		AlwaysReplaceExistingDestPaths: true,
	})
}
