package llbgen

import (
	"fmt"
	"os"
	"path"
	"strconv"

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

func (b *builder) fileAction(f *spec.File, ids map[string]uint32) (*llb.FileAction, error) {
	p := path.Join("/", f.Path)
	mode := os.FileMode(0o600)
	if f.Directory {
		mode = 0o700
	}
	if f.Mode != "" {
		m, err := strconv.ParseUint(f.Mode, 8, 32)
		if err != nil {
			return nil, fmt.Errorf("mode %q is not an octal number", f.Mode)
		}
		mode = os.FileMode(m)
	}
	dirMode := mode
	for _, bits := range []os.FileMode{0o700, 0o070, 0o007} {
		if mode&bits != 0 {
			dirMode |= bits & 0o111
		}
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
	perm := mode.Perm() | mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
	fa := llb.Mkdir(path.Dir(p), dirMode.Perm(), llb.WithParents(true), owner, ct)
	switch {
	case f.Directory:
		return fa.Mkdir(p, perm, llb.WithParents(true), owner, ct), nil
	case f.Symlink != "":
		return fa.Rm(p, llb.WithAllowNotFound(true)).Symlink(f.Symlink, p, owner, ct), nil
	case f.Contents != nil:
		return fa.Mkfile(p, perm, []byte(*f.Contents), owner, ct), nil
	case f.Source != "":
		if b.opt.Context == nil {
			return nil, fmt.Errorf("source %q: no build context", f.Source)
		}
		src := path.Join("/", f.Source)
		if f.Optional {
			// A one-name wildcard matches exactly this file and, with
			// AllowEmptyWildcard, copies nothing when it is missing.
			src = optionalPattern(src)
		}
		ctm := b.epoch()
		return fa.Copy(*b.opt.Context, src, p, &llb.CopyInfo{
			Mode:                           &llb.ChmodOpt{Mode: perm},
			ChownOpt:                       &llb.ChownOpt{User: &llb.UserOpt{UID: int(uid)}, Group: &llb.UserOpt{UID: int(gid)}},
			AllowWildcard:                  f.Optional,
			AllowEmptyWildcard:             f.Optional,
			CreatedTime:                    &ctm,
			AlwaysReplaceExistingDestPaths: true,
		}), nil
	case f.Metadata != "":
		dt, err := spec.Metadata(b.cfg, f.Metadata)
		if err != nil {
			return nil, err
		}
		return fa.Mkfile(p, perm, dt, owner, ct), nil
	}
	return nil, fmt.Errorf("no contents, source, metadata, directory or symlink")
}

// optionalPattern turns a path into a wildcard pattern that matches only
// that path: the first byte of the last element becomes a character class.
func optionalPattern(p string) string {
	dir, base := path.Split(p)
	if base == "" {
		return p
	}
	c := string(base[0])
	if c == "]" || c == "\\" || c == "-" {
		c = "\\" + c
	}
	return dir + "[" + c + "]" + base[1:]
}
