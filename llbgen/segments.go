package llbgen

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
)

// segmentPlan splits the root filesystem for a segmented initrd (see
// docs/formats.md): the initrd of the formats that embed one is the
// concatenation of the kernel's modules' segment when they can be apart
// (kernelApart), one gzip cpio segment per bundle and volume, written by
// its own mkimage step over that layer alone, then a segment of the base
// (kernel, init images, apk database, files, the time of "/") or, when the
// files can be apart (filesApart), one of the base without them and one of
// the files, then the extra segments. BuildKit caches every segment by its content, so a
// change to one service rewrites that service's segment and the
// concatenation; and a bundle's segment is written as soon as its image
// is extracted.
//
// The kernel unpacks the segments in order, a later entry replacing an
// earlier one of the same path (internal/initramfs models its rules). The
// concatenation equals the merged tree when the segments' paths are
// disjoint apart from the directories they share, and those come out
// alike: bundles and volumes hold only their own containers/<section>/<name>
// and its parents, which every one of them writes the same way and in the
// merge's order; the base holds no containers/ (checked here and by the
// base segment's writer) and, with the files' segment after it, is the
// only one with a "." entry, the root's mode, owner and time, which the
// last of them takes from the same "/" time step as the merged tree.
type segmentPlan struct {
	// base is the root filesystem without bundles and volumes.
	base llb.State
	// images is base without the files entries when filesPaths is set
	// (they are a segment of their own, after it), else base.
	images llb.State
	// filesPaths are the paths of the files entries, when they are a
	// segment of their own (see filesApart).
	filesPaths []string
	// layers are the bundles and volumes, in merge order.
	layers []*rootLayer
	// extra are segments after the base, each holding formats.SegmentFile
	// as formats.ExtraSegmentFormat writes it (no "." entry, no
	// containers/): the place for generated root files that depend on
	// every image, such as the SBOM (whose run writes its segment), so
	// that they do not make the base depend on every image.
	extra []llb.State
	// baseContainers is set when the kernel or an init image has
	// containers/ (directories only): the base's containers/ is then a
	// segment of its own, first, and the base segment leaves it out.
	baseContainers bool
	// why, when set, is why the initrd cannot be segmented: it is then
	// written whole from the merged tree.
	why     string
	whyPos  spec.Pos
	whyFrom string
	// kernel, when set, is the tree of the kernel's own segment, first:
	// the base segments leave out its non-directories (kernelApart).
	kernel *llb.State
	// outs are the segments' mkimage outputs, once made.
	outs []llb.State
}

// planSegments decides whether the initrd can be segmented and, if so,
// builds the base. layers are the reconciled layers of the merge, base
// layers (kernel, init) first; inits are the init layers.
func (b *builder) planSegments(ctx context.Context, rc *reconciler, layers, inits []*rootLayer) (*segmentPlan, error) {
	p := &segmentPlan{}
	var base []llb.State
	for _, l := range layers {
		if l.static == "" {
			base = append(base, b.relocated(l))
		} else {
			p.layers = append(p.layers, l)
		}
	}
	why, pos, field, err := b.segmentBlocker(ctx, rc, layers, inits)
	if err != nil {
		return nil, err
	}
	if why != "" {
		p.why, p.whyPos, p.whyFrom = why, pos, field
		return p, nil
	}
	if p.baseContainers, err = rc.baseHas(ctx, layers, formats.ContainersDir); err != nil {
		return nil, err
	}
	if p.kernel, err = b.kernelApart(ctx, rc, layers, inits); err != nil {
		return nil, err
	}
	st := llb.Scratch()
	if len(base) > 0 {
		st = b.merge(base)
	}
	p.base, err = b.finishRootfs(ctx, st, inits)
	if err != nil {
		return nil, err
	}
	p.images = p.base
	if p.filesPaths, err = b.filesApart(ctx, rc); err != nil || p.filesPaths == nil {
		return p, err
	}
	// The base without the files: the same apk database and time of "/".
	if st, err = b.withAPKDatabase(ctx, st, inits); err != nil {
		return nil, err
	}
	p.images = st.File(b.touch(nil, "/"), llb.WithCustomName("[rootfs] time of / (without files)"))
	return p, nil
}

// filesApart returns the paths of the files entries when they can be a
// segment of their own after a base segment without them (they then
// change without the base being written again), or nil. They can when
// every entry makes a new path or a directory where the layers have one:
// then the entries and the directories above them, taken from the whole
// base, are all that the files change. An entry over a file of the
// layers (whose hard links the kernel's truncation would change), or
// below a symlink that another entry makes, keeps the files in the base
// segment. Entries under boot/ are not in the initrd.
func (b *builder) filesApart(ctx context.Context, rc *reconciler) ([]string, error) {
	if len(b.cfg.Files) == 0 {
		return nil, nil
	}
	ids := spec.IDs(b.cfg)
	paths := []string{}
	var links []string
	for _, f := range b.cfg.Files {
		fa, err := b.fileAction(f, ids)
		if err != nil {
			return nil, nil // withFiles reports it
		}
		p := path.Clean("/" + f.Path)[1:]
		if fa == nil || under(p, "boot") && p != "" {
			continue
		}
		if p == "" {
			return nil, nil
		}
		ents, err := rc.gather(ctx, dirOf(p))
		if err != nil {
			return nil, err
		}
		if occs := ents[path.Base(p)]; len(occs) > 0 {
			if w := winner(occs); !w.e.isDir() || !f.Directory {
				return nil, nil
			}
		}
		if f.Symlink != "" {
			links = append(links, p)
		}
		paths = append(paths, p)
	}
	for _, l := range links {
		for _, p := range paths {
			if p != l && under(p, l) {
				return nil, nil
			}
		}
	}
	return paths, nil
}

// segmentBlocker returns why the layers cannot be split into segments
// whose concatenation unpacks to the merged tree, with the YAML position
// and field it comes from, or "" when they can.
func (b *builder) segmentBlocker(ctx context.Context, rc *reconciler, layers, inits []*rootLayer) (string, spec.Pos, string, error) {
	const cd = formats.ContainersDir
	for _, l := range layers {
		if l.static != "" {
			// A bundle or volume moved through a symlink would write
			// outside its own directory.
			if len(l.moves) > 0 {
				return fmt.Sprintf("%s is stored through a symlink of another layer", l.what), l.pos, "", nil
			}
			if !under(l.static, cd) {
				return fmt.Sprintf("%s is outside /%s", l.what, cd), l.pos, "", nil
			}
			continue
		}
		if why, err := rc.dirsOnly(ctx, l, cd); err != nil {
			return "", spec.Pos{}, "", err
		} else if why != "" {
			return why, l.pos, "", nil
		}
		for _, m := range l.moves {
			if under(m.to, cd) {
				return fmt.Sprintf("%s is stored through a symlink into /%s", l.what, m.to), l.pos, "", nil
			}
		}
	}
	// Files go last: one at or under containers/ (or written there
	// through a symlink) changes a bundle's contents or its directories.
	for i, f := range b.cfg.Files {
		p := path.Clean("/" + f.Path)[1:]
		field := fmt.Sprintf("files[%d].path", i)
		if under(p, cd) && p != "" {
			return fmt.Sprintf("files entry /%s is in /%s, where the bundles are", p, cd), f.Pos, field, nil
		}
		if real, _, err := rc.resolve(ctx, p); err == nil && under(real, cd) && real != "" {
			return fmt.Sprintf("files entry /%s leads to /%s, where the bundles are", p, real), f.Pos, field, nil
		}
		// An entry written over a symlink of the layers may be written
		// through it, wherever it points (a symlinks entry replaces it).
		if f.Symlink == "" && p != "" {
			ents, err := rc.gather(ctx, dirOf(p))
			if err == nil {
				if occs := ents[path.Base(p)]; len(occs) > 0 {
					if w := winner(occs); w.e.isSymlink() {
						return fmt.Sprintf("files entry /%s is a symlink to %s in %s, which it may be written through", p, w.e.link, w.layer.what), f.Pos, field, nil
					}
				}
			}
		}
	}
	if len(inits) > 1 {
		if real, _, err := rc.resolve(ctx, path.Dir(apkDatabase)); err == nil && under(real, cd) && real != "" {
			return fmt.Sprintf("the joined apk database would be written in /%s", real), spec.Pos{}, "", nil
		}
	}
	return "", spec.Pos{}, "", nil
}

// dirsOnly returns why the layer's p cannot be written in a segment of
// its own before the bundles': it is not a directory, or it holds anything
// but directories.
func (rc *reconciler) dirsOnly(ctx context.Context, l *rootLayer, p string) (string, error) {
	e, ok, err := rc.own(ctx, l, p)
	if err != nil || !ok {
		return "", err
	}
	if !e.isDir() {
		return fmt.Sprintf("%s has /%s, where the bundles are, and not as a directory", l.what, p), nil
	}
	ents, err := rc.list(ctx, l, p)
	if err != nil {
		return "", err
	}
	for _, n := range slices.Sorted(maps.Keys(ents)) {
		if why, err := rc.dirsOnly(ctx, l, joinRel(p, n)); why != "" || err != nil {
			return why, err
		}
	}
	return "", nil
}

// baseHas reports whether a kernel or init layer has p.
func (rc *reconciler) baseHas(ctx context.Context, layers []*rootLayer, p string) (bool, error) {
	for _, l := range layers {
		if l.static != "" {
			continue
		}
		if _, ok, err := rc.own(ctx, l, p); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// segmentRun returns the output of `lkbuild mkimage --format format` over
// st alone.
func (b *builder) segmentRun(st llb.State, format, name string, extra ...string) llb.State {
	return b.segmentRunWith(st, format, name, nil, extra...)
}

// segmentRunWith is segmentRun with more options (mounts) for the run.
func (b *builder) segmentRunWith(st llb.State, format, name string, opts []llb.RunOption, extra ...string) llb.State {
	args := append([]string{"/lkbuild", "mkimage", "--format", format, "--name", "segment", "--input", "/in", "--output", "/out"}, extra...)
	if b.opt.Epoch != nil {
		args = append(args, "--epoch", fmt.Sprint(b.opt.Epoch.Unix()))
	}
	run := b.opt.Helper.Run(append(opts,
		llb.Args(args),
		llb.Network(llb.NetModeNone),
		llb.AddMount("/in", st, llb.Readonly),
		llb.WithCustomName(name),
	)...)
	return run.AddMount("/out", llb.Scratch())
}

// segmented returns, for a target that embeds the initrd, the input tree
// of its mkimage run (the base, for boot/), the arguments naming the
// segments in order and the mounts that hold them. ok is false when the
// initrd cannot be segmented (a warning says why, once).
func (b *builder) segmented() (in llb.State, args []string, mounts []llb.RunOption, ok bool) {
	p := b.segments
	if p == nil {
		return llb.State{}, nil, nil, false
	}
	if p.why != "" {
		if !b.segWarned && b.opt.Warn != nil {
			b.segWarned = true
			b.opt.Warn(Warning{Pos: p.whyPos, Field: p.whyFrom,
				Msg: "the initrd is written whole, not in cached segments (docs/formats.md): " + p.why})
		}
		return llb.State{}, nil, nil, false
	}
	if p.outs == nil {
		baseFormat := formats.BaseSegmentFormat
		p.outs = append(p.outs, b.kernelSegment(p)...)
		if p.baseContainers {
			p.outs = append(p.outs, b.segmentRun(p.base, formats.ContainersSegmentFormat, "[initrd] segment of the base's /containers"))
			baseFormat = formats.BaseSplitSegmentFormat
		}
		for _, l := range p.layers {
			p.outs = append(p.outs, b.layerSegment(l))
		}
		if p.filesPaths == nil {
			p.outs = append(p.outs, b.baseSegmentRun(p, p.base, baseFormat, "init, files"))
		} else {
			p.outs = append(p.outs, b.baseSegmentRun(p, p.images, baseFormat, "init"))
			var args []string
			for _, f := range p.filesPaths {
				args = append(args, "--segment-path", "/"+f)
			}
			p.outs = append(p.outs, b.segmentRun(p.base, formats.FilesSegmentFormat, "[initrd] segment of the files", args...))
		}
		p.outs = append(p.outs, p.extra...)
	}
	for i, o := range p.outs {
		dir := fmt.Sprintf("/segments/%d", i)
		args = append(args, "--initrd-segment", path.Join(dir, formats.SegmentFile))
		mounts = append(mounts, llb.AddMount(dir, o, llb.Readonly))
	}
	return p.base, args, mounts, true
}
