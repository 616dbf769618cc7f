package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/frontend/subrequests/lint"
	"github.com/moby/buildkit/frontend/subrequests/outline"
	"github.com/moby/buildkit/frontend/subrequests/targets"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// noDaemon is a gateway client that has build options but no daemon: a
// subrequest answered from it reads nothing.
type noDaemon struct {
	client.Client
	opts map[string]string
}

func (c noDaemon) BuildOpts() client.BuildOpts {
	return client.BuildOpts{Opts: c.opts, LLBCaps: pb.Caps.CapSet(pb.Caps.All())}
}

func (c noDaemon) Solve(context.Context, client.SolveRequest) (*client.Result, error) {
	return nil, errors.New("no daemon: nothing may be solved")
}

// TestSubrequestsReadNoYAML: targets, outline and lkbuild.schema answer
// without reading the YAML (so also when it does not parse), in the shape
// buildx prints.
func TestSubrequestsReadNoYAML(t *testing.T) {
	call := func(req string, opts map[string]string) *client.Result {
		t.Helper()
		all := map[string]string{"requestid": req, "filename": "os/minimal.yml"}
		for k, v := range opts {
			all[k] = v
		}
		res, err := Build(context.Background(), noDaemon{opts: all})
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		return res
	}

	var tl targets.List
	if err := json.Unmarshal(call(targets.RequestTargets, nil).Metadata["result.json"], &tl); err != nil || len(tl.Targets) < 10 {
		t.Errorf("targets: %v %+v", err, tl)
	}

	var o outline.Outline
	res := call(outline.RequestSubrequestsOutline, map[string]string{"target": "iso-efi", "build-arg:NAME": "x"})
	if err := json.Unmarshal(res.Metadata["result.json"], &o); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range o.Args {
		names = append(names, a.Name)
		if a.Description == "" {
			t.Errorf("outline: %s has no description", a.Name)
		}
		if a.Name == ArgName && a.Value != "minimal" {
			t.Errorf("outline: NAME default %q, want minimal (the YAML file's name)", a.Value)
		}
	}
	if !slices.Equal(names, BuildArgNames()) || o.Name != "iso-efi" || !strings.Contains(o.Description, "ISO") {
		t.Errorf("outline %+v", o)
	}
	if txt := string(res.Metadata["result.txt"]); !strings.Contains(txt, "SOURCE_DATE_EPOCH") {
		t.Errorf("outline text lacks the build-args:\n%s", txt)
	}

	res = call(RequestSchema, nil)
	if string(res.Metadata["result.json"]) != string(spec.Schema()) || string(res.Metadata["result.txt"]) != string(spec.Schema()) {
		t.Error("lkbuild.schema does not return the schema")
	}
	if txt := string(call("frontend.subrequests.describe", nil).Metadata["result.txt"]); !strings.Contains(txt, "lint ") || !strings.Contains(txt, "lkbuild.schema ") {
		t.Errorf("describe:\n%s", txt)
	}

	if _, err := Build(context.Background(), noDaemon{opts: map[string]string{"requestid": "frontend.nope"}}); err == nil || !strings.Contains(err.Error(), "frontend.nope") {
		t.Errorf("an unknown subrequest: %v", err)
	}
}

// fakeConfigs resolves image configs from a table.
func fakeConfigs(m map[string]*ocispecs.Image) ImageConfigResolver {
	return func(_ context.Context, ref string, _ ocispecs.Platform) (*ocispecs.Image, error) {
		if img, ok := m[ref]; ok {
			return img, nil
		}
		return nil, errors.New("not found")
	}
}

func checkOf(t *testing.T, resolve ImageConfigResolver, files ...spec.Source) *lint.LintResults {
	t.Helper()
	smaps := map[string]*llb.SourceMap{}
	for _, f := range files {
		smaps[f.Filename] = llb.NewSourceMap(nil, f.Filename, "yaml", f.Data)
	}
	res, err := checkResults(context.Background(), files, smaps, ocispecs.Platform{OS: "linux", Architecture: "amd64"}, resolve)
	if err != nil {
		t.Fatal(err)
	}
	// The result is what buildx prints.
	if _, err := res.ToResult(nil); err != nil {
		t.Fatal(err)
	}
	return res
}

// where is "rule file:line:col" of each warning.
func where(res *lint.LintResults) []string {
	var out []string
	for _, w := range res.Warnings {
		s := w.RuleName
		if l := w.Location; l != nil && l.SourceIndex >= 0 {
			s += " " + res.Sources[l.SourceIndex].Filename + ":" + itoa(l.Ranges[0].Start.Line) + ":" + itoa(l.Ranges[0].Start.Character)
		}
		out = append(out, s)
	}
	return out
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestCheckInvalidYAML: a broken YAML is a check result with every error
// at its position, not a failed call.
func TestCheckInvalidYAML(t *testing.T) {
	res := checkOf(t, nil, spec.Source{Filename: "a.yml", Data: []byte("kernel:\n  image: k:1\n  cmdlin: x\nonboot:\n  - name: a\n    image: b:1\n    readonly: maybe\n")})
	got := where(res)
	if !slices.Equal(got, []string{"InvalidYAML a.yml:3:3", "InvalidYAML a.yml:7:15"}) {
		t.Errorf("warnings %q", got)
	}
	if !strings.Contains(res.Warnings[0].Detail, "kernel.cmdlin: unknown field") {
		t.Errorf("detail %q", res.Warnings[0].Detail)
	}
	res = checkOf(t, nil, spec.Source{Filename: "a.yml", Data: []byte("kernel: [\n")})
	if got := where(res); len(got) != 1 || !strings.HasPrefix(got[0], "InvalidYAML a.yml:") {
		t.Errorf("syntax error: %q", got)
	}
}

// TestCheckRules: the YAML rules and the image rules together, each
// warning in its own file, and an image resolved once.
func TestCheckRules(t *testing.T) {
	a := spec.Source{Filename: "a.yml", Data: []byte(`kernel:
  image: linuxkit/kernel:6.12.59
init:
  - linuxkit/init:latest
onboot:
  - name: nocmd
    image: empty:1
  - name: withcmd
    image: empty:1
    command: [/bin/true]
  - name: label
    image: labelled:1
  - name: cmd
    image: cmd:1
  - name: emptycmd
    image: cmd:1
    command: []
`)}
	b := spec.Source{Filename: "b.yml", Data: []byte(`services:
  - name: gone
    image: missing:1
  - name: gone2
    image: missing:1
  - name: dir
    image: local:1
`)}
	resolved := map[string]int{}
	configs := fakeConfigs(map[string]*ocispecs.Image{
		"empty:1":    {},
		"labelled:1": {Config: ocispecs.ImageConfig{Labels: map[string]string{spec.LabelConfig: `{"command": ["/bin/x"]}`}}},
		"cmd:1":      {Config: ocispecs.ImageConfig{Cmd: []string{"/bin/sh"}}},
		"local:1":    nil, // a config that cannot be known
	})
	var mu sync.Mutex
	counting := func(ctx context.Context, ref string, p ocispecs.Platform) (*ocispecs.Image, error) {
		mu.Lock()
		defer mu.Unlock()
		resolved[ref]++
		return configs(ctx, ref, p)
	}
	res := checkOf(t, counting, a, b)
	want := []string{"MovingImageTag a.yml:4:5", "MissingCommand a.yml:7:12", "MissingCommand a.yml:16:12", "UnresolvedImage b.yml:3:12"}
	if got := where(res); !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	for ref, n := range resolved {
		if n != 1 {
			t.Errorf("%s resolved %d times", ref, n)
		}
	}
	if resolved["empty:1"] != 1 || len(resolved) != 5 {
		t.Errorf("resolved %v", resolved)
	}
	// without a resolver, only the YAML rules
	if got := where(checkOf(t, nil, a, b)); !slices.Equal(got, want[:1]) {
		t.Errorf("without images: %q", got)
	}
}

// TestCheckRulesDocumented: every rule of --call check has a section of
// docs/check.md.
func TestCheckRulesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/check.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range CheckRules() {
		if !strings.Contains(string(doc), "\n## "+r.Name+"\n") || r.Description == "" {
			t.Errorf("rule %s: no section in docs/check.md or no description", r.Name)
		}
	}
}

// TestCheckTextNamesEachFile: in the text output of --call check, each
// warning names the file it is in, also a MERGE file's, whether the text
// is BuildKit's (result.txt) or buildx's, which prints the lines of every
// source under the -f file's path.
func TestCheckTextNamesEachFile(t *testing.T) {
	a := spec.Source{Filename: "a.yml", Data: []byte("kernel:\n  image: linuxkit/kernel:6.12.59\ninit:\n  - linuxkit/init:v1.0.0\n")}
	b := spec.Source{Filename: "b.yml", Data: []byte("onboot:\n  - name: x\n    image: busybox\n    command: [/bin/true]\n")}
	res := checkOf(t, nil, a, b)
	if got := where(res); !slices.Equal(got, []string{"MovingImageTag b.yml:3:12"}) {
		t.Fatalf("warnings %q", got)
	}
	// buildx (commands/build.go, printResult) renames every source to the
	// path of -f before printing.
	asBuildx := func(si *pb.SourceInfo) *pb.SourceInfo {
		return &pb.SourceInfo{Filename: "os/a.yml", Data: si.Data, Language: si.Language, Definition: si.Definition}
	}
	for name, scb := range map[string]lint.SourceInfoMap{"BuildKit": nil, "buildx": asBuildx} {
		var out strings.Builder
		if err := res.PrintTo(&out, scb); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "\nb.yml:3:12: onboot[0].image: image \"busybox\" has no tag") {
			t.Errorf("%s text does not name b.yml:3:12 in the warning:\n%s", name, out.String())
		}
	}
	if d := res.Warnings[0].Detail; !strings.HasPrefix(d, "b.yml:3:12: onboot[0].image: ") {
		t.Errorf("detail %q", d)
	}
}
