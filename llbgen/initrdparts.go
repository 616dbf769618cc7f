package llbgen

import (
	"fmt"
	"path"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/moby/buildkit/client/llb"
)

// initrdPartsMount is where kernel+initrd's mkimage run writes the parts
// that are not segments (Options.InitrdParts).
const initrdPartsMount = "/parts"

// InitrdParts is kernel+initrd's initrd built in parts (Options.InitrdParts,
// formats.InitrdParts): the result's output holds the manifest at
// formats.InitrdPartsDir/formats.InitrdPartsManifest instead of the initrd,
// and With adds the parts a client lacks. The frontend reads the manifest
// from Manifest (solved) and calls With.
type InitrdParts struct {
	// Manifest is the mkimage output holding the manifest.
	Manifest llb.State
	// written holds the parts mkimage wrote (segment -1), each at /<sha256>.
	written llb.State
	// segments are the initrd's segment steps, each holding
	// formats.SegmentFile, in the order of the manifest's segment indexes.
	segments []llb.State
	noMerge  bool
}

func (b *builder) newInitrdParts(out, written llb.State) *InitrdParts {
	p := &InitrdParts{Manifest: out, written: written, noMerge: b.opt.NoMergeOp}
	if s := b.segments; s != nil && s.why == "" {
		p.segments = s.outs
	}
	return p
}

// With returns output with, in formats.InitrdPartsDir, every part of the
// manifest m for which have is false, each named by its SHA-256. It fails
// on a manifest that names a segment the build does not have.
func (p *InitrdParts) With(output llb.State, m formats.InitrdParts, have func(sha256 string) bool) (llb.State, error) {
	var fa *llb.FileAction
	seen := map[string]bool{}
	for i, part := range m.Parts {
		if have(part.SHA256) || seen[part.SHA256] {
			continue
		}
		seen[part.SHA256] = true
		src, from := p.written, "/"+part.SHA256
		if part.Segment >= 0 {
			if part.Segment >= len(p.segments) {
				return llb.State{}, fmt.Errorf("initrd parts manifest: part %d is segment %d of %d", i, part.Segment, len(p.segments))
			}
			src, from = p.segments[part.Segment], "/"+formats.SegmentFile
		}
		dst, ci := path.Join("/", formats.InitrdPartsDir, part.SHA256), &llb.CopyInfo{CreateDestPath: true}
		if fa == nil {
			fa = llb.Copy(src, from, dst, ci)
		} else {
			fa = fa.Copy(src, from, dst, ci)
		}
	}
	if fa == nil {
		return output, nil
	}
	sent := llb.Scratch().File(fa, llb.WithCustomNamef("[%s] the initrd's parts to send (%d of %d)", formats.InitrdPartsTarget, len(seen), len(m.Parts)))
	if p.noMerge {
		return output.File(llb.Copy(sent, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.WithCustomName("[initrd] add the parts")), nil
	}
	return llb.Merge([]llb.State{output, sent}, llb.WithCustomName("[initrd] add the parts")), nil
}
