package llbgen

import (
	"context"
	"sync"
	"testing"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// prefetchReader is fakeReader that records the digests of the states it
// is asked to prefetch, and whether a layer had been read before.
type prefetchReader struct {
	fakeReader
	mu         sync.Mutex // the layers are opened concurrently (newReconciler)
	opened     int
	prefetched []string
	openedAt   []int // opened when each prefetch came
}

func (r *prefetchReader) Open(ctx context.Context, st llb.State) (Tree, error) {
	r.mu.Lock()
	r.opened++
	r.mu.Unlock()
	return r.fakeReader.Open(ctx, st)
}

func (r *prefetchReader) Prefetch(ctx context.Context, st llb.State) {
	def, err := st.Marshal(ctx)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prefetched = append(r.prefetched, lastOpDigest(def))
	r.openedAt = append(r.openedAt, r.opened)
}

func lastOpDigest(def *llb.Definition) string {
	// The op before the terminal one is the state's own.
	return digestOfBytes(def.Def[len(def.Def)-2])
}

// TestPrefetchSegments: for a target that embeds the initrd, the bundles'
// segment steps and the kernel's modules' are prefetched before any layer
// is read, and they are the
// steps the initrd's concatenation mounts; Result.Prefetched says so, so
// that the frontend evaluates the output before the background solves
// end. A tree target prefetches none.
func TestPrefetchSegments(t *testing.T) {
	cfg := func() *fakeResolver {
		return &fakeResolver{configs: map[string]ocispecs.ImageConfig{"docker.io/library/busybox:1.36": {Cmd: []string{"sh"}}}}
	}
	for _, tc := range []struct {
		target string
		want   int
	}{{"kernel+initrd", 3}, {"kernel+initrd,iso-efi", 3}, {"tar", 0}, {"kernel+iso", 0}} {
		r := &prefetchReader{fakeReader: fakeReader{}}
		opt := options(cfg())
		opt.Reader, opt.Target = r, tc.target
		res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), opt)
		if err != nil {
			t.Fatal(err)
		}
		if res.Prefetched != (tc.want > 0) {
			t.Errorf("%s: Result.Prefetched %v, want %v", tc.target, res.Prefetched, tc.want > 0)
		}
		if len(r.prefetched) != tc.want {
			t.Errorf("%s: %d prefetched, want %d", tc.target, len(r.prefetched), tc.want)
			continue
		}
		for i, n := range r.openedAt {
			if n != 0 {
				t.Errorf("%s: prefetch %d came after %d layer reads, want before any", tc.target, i, n)
			}
		}
		def, err := res.Output.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, dt := range def.Def {
			have[digestOfBytes(dt)] = true
		}
		for _, d := range r.prefetched {
			if !have[d] {
				t.Errorf("%s: prefetched step %s is not in the final definition", tc.target, d)
			}
		}
	}
}
