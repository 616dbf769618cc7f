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
	// initrd is the artifact's name (<name>-initrd.img); ucode is set
	// when the kernel section has microcode (a part before the segments).
	initrd string
	ucode  bool
}

func (b *builder) newInitrdParts(out, written llb.State) *InitrdParts {
	p := &InitrdParts{Manifest: out, written: written, noMerge: b.opt.NoMergeOp,
		initrd: path.Base(b.opt.Name) + "-initrd.img", ucode: b.cfg.Kernel.UCodeFile() != ""}
	if s := b.segments; s != nil && s.why == "" {
		p.segments = s.outs
	}
	return p
}

// SegmentSteps returns, when the manifest is expected to list the
// initrd's segments alone (it is segmented and the kernel section has no
// microcode), the segment steps in order, each holding formats.SegmentFile
// and formats.SegmentDigestFile; else nil. With ExpectedManifest the
// frontend can pass the parts on before the manifest's step ends. A wrong
// expectation (a files entry writing boot/ucode.cpio) costs time only:
// the client recognises what it wrote ahead by the manifest's bytes.
func (p *InitrdParts) SegmentSteps() []llb.State {
	if p.ucode {
		return nil
	}
	return p.segments
}

// ExpectedManifest returns the bytes of the manifest mkimage writes when
// its parts are segs, the segments in order (SegmentSteps).
func (p *InitrdParts) ExpectedManifest(segs []formats.InitrdPart) ([]byte, error) {
	return formats.InitrdParts{Initrd: p.initrd, Parts: segs}.Marshal()
}

// PartSource is where the bytes of one part of the manifest are: the file
// Path in the solved State.
type PartSource struct {
	Part  formats.InitrdPart
	State llb.State
	Path  string
}

// Missing returns, once each and in the manifest's order, where the parts
// of m for which have is false are. It fails on a manifest that names a
// segment the build does not have.
func (p *InitrdParts) Missing(m formats.InitrdParts, have func(sha256 string) bool) ([]PartSource, error) {
	var out []PartSource
	seen := map[string]bool{}
	for i, part := range m.Parts {
		if have(part.SHA256) || seen[part.SHA256] {
			continue
		}
		seen[part.SHA256] = true
		src := PartSource{Part: part, State: p.written, Path: "/" + part.SHA256}
		if part.Segment >= 0 {
			if part.Segment >= len(p.segments) {
				return nil, fmt.Errorf("initrd parts manifest: part %d is segment %d of %d", i, part.Segment, len(p.segments))
			}
			src.State, src.Path = p.segments[part.Segment], "/"+formats.SegmentFile
		}
		out = append(out, src)
	}
	return out, nil
}

// With returns output with, in formats.InitrdPartsDir, every part of the
// manifest m for which have is false, each named by its SHA-256 (Missing).
func (p *InitrdParts) With(output llb.State, m formats.InitrdParts, have func(sha256 string) bool) (llb.State, error) {
	srcs, err := p.Missing(m, have)
	if err != nil || len(srcs) == 0 {
		return output, err
	}
	var fa *llb.FileAction
	for _, src := range srcs {
		dst, ci := path.Join("/", formats.InitrdPartsDir, src.Part.SHA256), &llb.CopyInfo{CreateDestPath: true}
		if fa == nil {
			fa = llb.Copy(src.State, src.Path, dst, ci)
		} else {
			fa = fa.Copy(src.State, src.Path, dst, ci)
		}
	}
	sent := llb.Scratch().File(fa, llb.WithCustomNamef("[%s] the initrd's parts to send (%d of %d)", formats.InitrdPartsTarget, len(srcs), len(m.Parts)))
	if p.noMerge {
		return output.File(llb.Copy(sent, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.WithCustomName("[initrd] add the parts")), nil
	}
	return llb.Merge([]llb.State{output, sent}, llb.WithCustomName("[initrd] add the parts")), nil
}
