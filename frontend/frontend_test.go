package frontend

import (
	"context"
	"errors"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/errdefs"
)

func TestListTargets(t *testing.T) {
	l, err := listTargets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defaults := 0
	for _, tg := range l.Targets {
		if tg.Description == "" {
			t.Errorf("%s has no description", tg.Name)
		}
		if tg.Default {
			defaults++
			if tg.Name != "kernel+initrd" {
				t.Errorf("default target %s", tg.Name)
			}
		}
	}
	if defaults != 1 {
		t.Errorf("%d default targets", defaults)
	}
}

// TestWithSource checks that YAML errors carry the lines buildx prints.
func TestWithSource(t *testing.T) {
	data := []byte("kernel:\n  image: k\n  cmdlin: x\n")
	_, err := spec.Parse("bad.yml", data)
	if err == nil {
		t.Fatal("expected a parse error")
	}
	sm := map[string]*llb.SourceMap{"bad.yml": llb.NewSourceMap(nil, "bad.yml", "yaml", data)}
	srcs := errdefs.Sources(withSource(err, sm))
	if len(srcs) != 1 || srcs[0].Info.Filename != "bad.yml" || srcs[0].Ranges[0].Start.Line != 3 {
		t.Fatalf("sources = %+v", srcs)
	}
	plain := errors.New("not a YAML error")
	if withSource(plain, sm) != plain {
		t.Error("other errors must pass through unchanged")
	}
}
