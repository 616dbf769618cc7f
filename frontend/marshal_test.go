package frontend

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/moby/buildkit/client/llb"
)

// TestMarshalStateConcurrent: states sharing an exec step whose mounts
// are not in order, marshalled at once as the frontend does (the layers
// read, the segments read ahead), give the definitions of a marshal one
// at a time. Without marshalState's lock BuildKit sorts the step's mounts
// in place in both (go test -race reports it) and may mix them up.
func TestMarshalStateConcurrent(t *testing.T) {
	ctx := context.Background()
	states := func() []llb.State {
		e := llb.Image("docker.io/library/busybox:1.36").Run(llb.Shlex("true"),
			llb.AddMount("/z", llb.Scratch()), llb.AddMount("/m", llb.Scratch()), llb.AddMount("/a", llb.Scratch()))
		var out []llb.State
		for _, p := range []string{"/z", "/m", "/a"} {
			out = append(out, e.GetMount(p).File(llb.Mkdir("/x", 0o755)))
		}
		return append(out, e.Root())
	}
	var want [][]byte
	for _, st := range states() {
		def, err := st.Marshal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, bytes.Join(def.Def, nil))
	}
	for range 20 {
		sts := states()
		got := make([][]byte, len(sts))
		var wg sync.WaitGroup
		for i, st := range sts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				def, err := marshalState(ctx, st)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = bytes.Join(def.Def, nil)
			}()
		}
		wg.Wait()
		for i := range sts {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("state %d: the definition differs from its marshal alone", i)
			}
		}
	}
}
