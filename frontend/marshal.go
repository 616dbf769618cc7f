package frontend

import (
	"context"
	"sync"

	"github.com/moby/buildkit/client/llb"
)

// marshalMu serialises marshalState. BuildKit's llb.ExecOp sorts its
// mounts in place when a marshal walks the graph (ExecOp.Inputs), outside
// the op's own lock, so two marshals of states sharing an exec step at
// once race on that slice and may swap its entries into a wrong order or
// a duplicate. The frontend marshals states of one graph concurrently: the
// layers the reconciler reads, the segment steps read for the manifest,
// the parts sent. A marshal takes milliseconds; the solves it
// feeds still run concurrently.
var marshalMu sync.Mutex

// marshalState is st.Marshal, one at a time in the process.
func marshalState(ctx context.Context, st llb.State, co ...llb.ConstraintsOpt) (*llb.Definition, error) {
	marshalMu.Lock()
	defer marshalMu.Unlock()
	return st.Marshal(ctx, co...)
}
