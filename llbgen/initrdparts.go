package llbgen

import (
	"fmt"
	"path"
	"time"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/moby/buildkit/client/llb"
)

// initrdPartsMount is where kernel+initrd's mkimage run writes the parts
// that are not segments (Options.InitrdParts).
const initrdPartsMount = "/parts"

// InitrdParts is kernel+initrd's initrd built in parts (Options.InitrdParts,
// formats.InitrdParts): the result's output holds, instead of the initrd,
// the manifest at formats.InitrdPartsDir/formats.InitrdPartsManifest, and
// With adds the parts a client lacks.
//
// When the initrd is segmented (Segmented), the mkimage step does not wait
// for the segments: it writes only its own parts (the microcode) and their
// manifest into Own, and the frontend completes it with the segments'
// digests and sizes (SegmentSteps, Compose) and adds it to the output
// (WithManifest). Otherwise the mkimage step writes the whole manifest
// into Manifest's output.
type InitrdParts struct {
	// Manifest is the mkimage output holding the manifest, when not
	// Segmented.
	Manifest llb.State
	// Own holds the parts mkimage wrote (segment -1), each at /<sha256>,
	// and, when Segmented, their manifest at /formats.InitrdPartsManifest.
	Own llb.State
	// segments are the initrd's segment steps, each holding
	// formats.SegmentFile and formats.SegmentDigestFile, in the order of
	// the manifest's segment indexes.
	segments  []llb.State
	segmented bool
	noMerge   bool
	epoch     time.Time // the artifacts' time: SOURCE_DATE_EPOCH, else 0
}

func (b *builder) newInitrdParts(out, own llb.State, segmented bool) *InitrdParts {
	p := &InitrdParts{Manifest: out, Own: own, segmented: segmented, noMerge: b.opt.NoMergeOp, epoch: time.Unix(0, 0).UTC()}
	if b.opt.Epoch != nil {
		p.epoch = *b.opt.Epoch
	}
	if s := b.segments; s != nil && s.why == "" {
		p.segments = s.outs
	}
	return p
}

// Segmented tells whether the frontend makes the manifest (SegmentSteps,
// Compose, WithManifest) rather than the mkimage step.
func (p *InitrdParts) Segmented() bool { return p.segmented }

// SegmentSteps returns the segment steps, in order, each holding
// formats.SegmentFile and formats.SegmentDigestFile.
func (p *InitrdParts) SegmentSteps() []llb.State { return p.segments }

// Compose returns the bytes of the whole manifest: mkimage's own (read
// from Own) followed by the segments segs, in order, with their indexes.
func (p *InitrdParts) Compose(own formats.InitrdParts, segs []formats.InitrdPart) ([]byte, error) {
	if len(segs) != len(p.segments) {
		return nil, fmt.Errorf("initrd parts: %d segments listed, the build has %d", len(segs), len(p.segments))
	}
	m := formats.InitrdParts{Initrd: own.Initrd, Parts: append([]formats.InitrdPart{}, own.Parts...)}
	for i, sp := range segs {
		if sp.Segment != i {
			return nil, fmt.Errorf("initrd parts: segment %d listed as %d", i, sp.Segment)
		}
		m.Parts = append(m.Parts, sp)
	}
	return m.Marshal()
}

// WithManifest returns output with the manifest b at
// formats.InitrdPartsDir/formats.InitrdPartsManifest, with the mode and
// time mkimage gives the artifacts (the client gives them to the initrd).
func (p *InitrdParts) WithManifest(output llb.State, b []byte) llb.State {
	ct := llb.WithCreatedTime(p.epoch)
	dir := path.Join("/", formats.InitrdPartsDir)
	m := llb.Scratch().File(llb.Mkdir(dir, 0o755, ct).Mkfile(path.Join(dir, formats.InitrdPartsManifest), 0o644, b, ct),
		llb.WithCustomNamef("[%s] the initrd's manifest", formats.InitrdPartsTarget))
	if p.noMerge {
		return output.File(llb.Copy(m, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.WithCustomName("[initrd] add the manifest"))
	}
	return llb.Merge([]llb.State{output, m}, llb.WithCustomName("[initrd] add the manifest"))
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
		src := PartSource{Part: part, State: p.Own, Path: "/" + part.SHA256}
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
