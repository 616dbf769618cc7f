package llbgen

import (
	"context"
	"maps"
	"path"
	"slices"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/moby/buildkit/client/llb"
)

// kernelExcludeDir is where the base segment's run mounts the kernel
// segment's tree, whose non-directories it leaves out.
const kernelExcludeDir = "/kernel"

// kernelApart returns the input of the kernel's own segment, when the
// kernel's modules tarball can be one: its unpacked tree (the kernel
// layer's segment state, relocated as the layer is), written first in the
// initrd by its own step, which starts as soon as the kernel image is
// extracted and is cached by the tarball alone. The base segment then
// leaves out the tree's non-directories and writes every directory again,
// with the merged tree's mode, owner and time: the kernel applies the
// later entry of a directory, so directories that the kernel shares with
// the init images or the files come out as merged.
//
// That holds while nothing after the kernel writes over one of its
// non-directories: a regular file written again would be truncated with
// every path hard-linked to it, a symlink or a file replaced by a
// directory would need it removed first. So the kernel stays in the base
// segment (nil, no warning: the initrd is still segmented) when an init
// image has an entry at a path where the kernel has a non-directory, or a
// non-directory where the kernel has a directory; when a files entry, the
// joined apk database or the SBOM is written at a path the kernel has
// (unless both are directories); or when a directory of the kernel under
// boot/ is moved through a symlink (the segment's tree has no boot/).
func (b *builder) kernelApart(ctx context.Context, rc *reconciler, layers, inits []*rootLayer) (*llb.State, error) {
	var kl *rootLayer
	for _, l := range layers {
		if l.segment != nil && l.static == "" {
			kl = l
			break
		}
	}
	if kl == nil {
		return nil, nil
	}
	for _, m := range kl.moves {
		if under(m.from, "boot") {
			return nil, nil
		}
	}
	if over, err := rc.overKernel(ctx, kl, ""); over || err != nil {
		return nil, err
	}
	// What goes on top of the layers: the files entries, the joined apk
	// database, the SBOM.
	type top struct {
		p   string
		dir bool
	}
	var tops []top
	for _, f := range b.cfg.Files {
		p := path.Clean("/" + f.Path)[1:]
		if p == "" || under(p, "boot") {
			continue
		}
		tops = append(tops, top{p, f.Directory})
	}
	if len(inits) > 1 {
		if real, _, err := rc.resolve(ctx, path.Dir(apkDatabase)); err == nil {
			tops = append(tops, top{joinRel(real, path.Base(apkDatabase)), false})
		}
	}
	if b.opt.SBOM {
		tops = append(tops, top{SBOMPath[1:], false})
	}
	for _, t := range tops {
		ents, err := rc.gather(ctx, dirOf(t.p))
		if err != nil {
			// A parent that is missing or not a directory: withFiles
			// creates it or reports it.
			continue
		}
		for _, o := range ents[path.Base(t.p)] {
			if o.layer == kl && (!t.dir || !o.e.isDir()) {
				return nil, nil
			}
		}
	}
	st := b.relocate(kl, *kl.segment, kl.what+" modules")
	return &st, nil
}

// overKernel reports whether a base layer other than the kernel's kl has
// an entry in the merged directory dir, or below it, at a path where kl
// has one too, unless both are directories. It descends only into the
// directories that both have; boot/ and containers/ are not in the
// kernel's segment.
func (rc *reconciler) overKernel(ctx context.Context, kl *rootLayer, dir string) (bool, error) {
	ents, err := rc.gather(ctx, dir)
	if err != nil {
		return false, err
	}
	for _, n := range slices.Sorted(maps.Keys(ents)) {
		if dir == "" && (n == "boot" || n == formats.ContainersDir) {
			continue
		}
		kernel, other, dirs := false, false, true
		for _, o := range ents[n] {
			if o.layer.static != "" {
				continue
			}
			if o.layer == kl {
				kernel = true
			} else {
				other = true
			}
			dirs = dirs && o.e.isDir()
		}
		if !kernel || !other {
			continue
		}
		if !dirs {
			return true, nil
		}
		if over, err := rc.overKernel(ctx, kl, joinRel(dir, n)); over || err != nil {
			return over, err
		}
	}
	return false, nil
}

// baseSegmentRun is segmentRun for a base segment format over st, named
// for what it holds (what: "init" or "init, files", besides the kernel).
// With the kernel's own segment (p.kernel), the run mounts its tree and
// leaves out the tree's non-directories.
func (b *builder) baseSegmentRun(p *segmentPlan, st llb.State, format, what string) llb.State {
	if p.kernel == nil {
		return b.segmentRun(st, format, "[initrd] segment of the base (kernel, "+what+")")
	}
	return b.segmentRunWith(st, format, "[initrd] segment of the base ("+what+")",
		[]llb.RunOption{llb.AddMount(kernelExcludeDir, *p.kernel, llb.Readonly)}, "--segment-exclude", kernelExcludeDir)
}

// kernelSegment returns the kernel's own segment, or nothing.
func (b *builder) kernelSegment(p *segmentPlan) []llb.State {
	if p.kernel == nil {
		return nil
	}
	return []llb.State{b.kernelSegmentRun(*p.kernel)}
}

// kernelSegmentRun returns the run that writes the kernel's segment from
// st. For a kernel layer without moves, st is the layer's segment state
// itself, so the run is known as soon as the kernel layer is: it can be
// started before the layers are reconciled.
func (b *builder) kernelSegmentRun(st llb.State) llb.State {
	return b.segmentRun(st, formats.KernelSegmentFormat, "[initrd] segment of the kernel's modules")
}
