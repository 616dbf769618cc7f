package frontend

import (
	"context"
	"fmt"

	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// reader solves states for llbgen through the gateway, with the same
// constraints as the build's final definition, so the solved layers are
// the ones the build then reuses.
type reader struct {
	c            client.Client
	constraints  []llb.ConstraintsOpt
	cacheImports []client.CacheOptionsEntry
}

var _ llbgen.Reader = (*reader)(nil)

func (r *reader) Open(ctx context.Context, st llb.State) (llbgen.Tree, error) {
	def, err := marshalState(ctx, st, r.constraints...)
	if err != nil {
		return nil, fmt.Errorf("marshalling LLB: %w", err)
	}
	res, err := r.c.Solve(ctx, client.SolveRequest{Definition: def.ToPB(), CacheImports: r.cacheImports})
	if err != nil {
		return nil, err
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, err
	}
	return tree{ref}, nil
}

// Prefetch starts evaluating st in the background (llbgen.Prefetcher):
// the build's final definition holds the same steps, with the same
// constraints, and reuses them. Errors are left to that final solve; the
// solve ends when ctx (the platform's build) does, so the final
// definition is evaluated before (request.build, Result.Prefetched).
func (r *reader) Prefetch(ctx context.Context, st llb.State) {
	def, err := marshalState(ctx, st, r.constraints...)
	if err != nil {
		return // the final marshal reports it
	}
	go func() {
		_, _ = r.c.Solve(ctx, client.SolveRequest{Definition: def.ToPB(), CacheImports: r.cacheImports, Evaluate: true})
	}()
}

var _ llbgen.Prefetcher = (*reader)(nil)

type tree struct{ ref client.Reference }

func (t tree) ReadDir(ctx context.Context, dir string) ([]*fstypes.Stat, error) {
	return t.ref.ReadDir(ctx, client.ReadDirRequest{Path: dir})
}

func (t tree) ReadFile(ctx context.Context, name string) ([]byte, error) {
	return t.ref.ReadFile(ctx, client.ReadRequest{Filename: name})
}
