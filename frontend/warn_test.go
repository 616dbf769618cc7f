package frontend

import (
	"context"
	"testing"

	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
)

// TestWarnAt: llbgen's warnings reach BuildKit with their text and the
// line in the YAML file they are about, also for a merged file.
func TestWarnAt(t *testing.T) {
	var msgs []string
	var opts []client.WarnOpts
	src := &dockerui.Source{Warn: func(_ context.Context, msg string, o client.WarnOpts) {
		msgs, opts = append(msgs, msg), append(opts, o)
	}}
	smaps := map[string]*llb.SourceMap{
		"a.yml": llb.NewSourceMap(nil, "a.yml", "yaml", []byte("onboot: []\n")),
		"b.yml": llb.NewSourceMap(nil, "b.yml", "yaml", []byte("services:\n  - name: x\n")),
	}
	warn := warnAt(context.Background(), src, smaps)
	warn(llbgen.Warning{Pos: spec.Pos{File: "b.yml", Line: 2, Col: 5}, Field: "services[0].image", Msg: "image x: its config names no os"})
	if len(msgs) != 1 || msgs[0] != "b.yml:2:5: services[0].image: image x: its config names no os" {
		t.Fatalf("warnings %q", msgs)
	}
	o := opts[0]
	if o.SourceInfo == nil || o.SourceInfo.Filename != "b.yml" || len(o.Range) != 1 || o.Range[0].Start.Line != 2 {
		t.Errorf("warning source %+v range %v, want b.yml line 2", o.SourceInfo, o.Range)
	}
}
