package llbgen

import (
	"context"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/moby/buildkit/client/llb"
)

// layerSegment is the segment step of a bundle's or volume's layer, made
// once per layer so that the step prefetchSegments starts is the one the
// initrd uses.
func (b *builder) layerSegment(l *rootLayer) llb.State {
	if l.segmentStep == nil {
		st := b.segmentRun(l.st, formats.SegmentFormat, "[initrd] segment of "+l.what)
		l.segmentStep = &st
	}
	return *l.segmentStep
}

// Prefetcher is implemented by a Reader that can start solving a state in
// the background (the frontend's, through the gateway). The result is not
// read: the build's final definition holds the same steps and reuses
// them. Errors are left to the final solve.
//
// The background solve ends with ctx. BuildKit shares a step between the
// requests that ask for it, but when every request that wants a step's
// result has ended, it stops the step: a step still running then is
// killed and runs again from the start for the final definition. So when
// Result.Prefetched is set, the caller must solve the final definition
// to the end (evaluate it) before ctx ends, not leave it to be solved
// after the frontend returns.
type Prefetcher interface {
	Prefetch(ctx context.Context, st llb.State)
}

// prefetchSegments starts the segment steps of the bundles and volumes and
// of the kernel's modules (their LLB does not depend on the reconciler,
// the modules' as long as the kernel's tree is not relocated) before the kernel and init
// layers are read, so that those images are pulled and compressed while
// the reconciler waits for the kernel and init: the issue's "start
// compressing early". It does so only when a target embeds the initrd and
// the Reader can prefetch, and then sets b.prefetched; when the initrd
// then cannot be segmented, the steps are wasted work, not wrong output
// (they are not used).
func (b *builder) prefetchSegments(ctx context.Context, targets []formats.Target, layers []*rootLayer) {
	pf, ok := b.opt.Reader.(Prefetcher)
	if !ok || b.opt.Helper == nil {
		return
	}
	initrd := false
	for _, t := range targets {
		initrd = initrd || t.Initrd
	}
	if !initrd {
		return
	}
	for _, l := range layers {
		switch {
		case l.static != "":
			pf.Prefetch(ctx, b.layerSegment(l))
			b.prefetched = true
		case l.segment != nil:
			// The kernel's modules: the step the initrd uses when the
			// kernel's tree is not moved through an init image's
			// symlink and nothing writes over it (kernelApart); else
			// wasted work, as above.
			pf.Prefetch(ctx, b.kernelSegmentRun(*l.segment))
			b.prefetched = true
		}
	}
}
