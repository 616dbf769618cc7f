package llbgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lkbuild/lkbuild/internal/golden"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// goldenCase is one configuration whose LLB is kept under testdata/llb.
type goldenCase struct {
	name string
	file string
	opts func(*Options)
}

var goldenCases = []goldenCase{
	{"minimal", "../examples/minimal.yml", func(o *Options) {}},
	{"minimal-targets", "../examples/minimal.yml", func(o *Options) {
		epoch := time.Unix(1700000000, 0).UTC()
		o.Target, o.Size, o.Epoch = "kernel+initrd,iso-efi,raw-bios", 256<<20, &epoch
	}},
	{"minimal-docker-nomerge", "../examples/minimal.yml", func(o *Options) {
		o.Target, o.NoMergeOp = "docker", true
	}},
	{"files", "testdata/files.yml", func(o *Options) {
		// a fixed unique ID: llb.Local's default is random
		ctxState := llb.Local("context", llb.LocalUniqueID("golden"))
		o.Target, o.Context = "tar", &ctxState
		o.Sources = map[string]string{"conf/app.conf": "conf/app.conf"}
	}},
	{"volumes", "testdata/volumes.yml", func(o *Options) { o.Target = "tar" }},
}

// marshal builds the case's output and marshals it.
func (c goldenCase) marshal(t *testing.T) *llb.Definition {
	t.Helper()
	o := options(&fakeResolver{})
	c.opts(&o)
	res, err := Build(context.Background(), parseFile(t, c.file), o)
	if err != nil {
		t.Fatal(err)
	}
	def, err := res.Output.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// TestGolden compares the LLB of each case with testdata/llb/<case>.txt,
// so that every change of the graph shows in review. After a change of
// the graph that is meant, rewrite them: go test ./llbgen -run Golden -update
func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got := describeDefinition(t, c.marshal(t))
			golden.Check(t, filepath.Join("testdata", "llb", c.name+".txt"), []byte(got), "Golden")
		})
	}
}

// TestDeterministic marshals each golden case 20 times: the definitions
// must be identical, op for op.
func TestDeterministic(t *testing.T) {
	for _, c := range goldenCases {
		var first []digest.Digest
		for i := 0; i < 20; i++ {
			def := c.marshal(t)
			var ds []digest.Digest
			for _, dt := range def.Def {
				ds = append(ds, digest.FromBytes(dt))
			}
			if first == nil {
				first = ds
				continue
			}
			if fmt.Sprint(ds) != fmt.Sprint(first) {
				t.Fatalf("%s: marshal %d differs from the first:\n%v\n%v", c.name, i, ds, first)
			}
		}
	}
}

// describeDefinition writes def as text for review: each op in the
// definition's order as #N, its digest and custom name, then the op and
// its metadata as indented JSON, with inputs named #N and file contents
// shown as text (or as a digest when long or binary).
func describeDefinition(t *testing.T, def *llb.Definition) string {
	t.Helper()
	num := map[string]string{}
	for i, dt := range def.Def {
		num[digest.FromBytes(dt).String()] = fmt.Sprintf("#%d", i)
	}
	var b strings.Builder
	for i, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		dgst := digest.FromBytes(dt)
		meta := def.Metadata[dgst]
		name := meta.Description["llb.customname"]
		if op.Op == nil {
			name = "(the result)"
		}
		fmt.Fprintf(&b, "#%d %s %s\n", i, dgst.Encoded()[:12], name)
		fmt.Fprintf(&b, "%s\n", readable(t, &op, num))
		if len(meta.Description) > 0 || len(meta.Caps) > 0 {
			fmt.Fprintf(&b, "metadata %s\n", readable(t, meta, num))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// readable is v as indented JSON with sorted keys, op digests replaced by
// their #N, and byte contents decoded.
func readable(t *testing.T, v any, num map[string]string) string {
	t.Helper()
	dt, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m any
	if err := json.Unmarshal(dt, &m); err != nil {
		t.Fatal(err)
	}
	m = rewrite(m, "", num)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(buf.String(), "\n")
}

// rewrite walks a decoded JSON value: strings that are op digests become
// #N, the data of files (base64 in JSON) becomes its text when short and
// printable, else its digest and size; modes are octal, timestamps times;
// empty objects are left out.
func rewrite(v any, key string, num map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			x[k] = rewrite(x[k], k, num)
			if m, ok := x[k].(map[string]any); ok && len(m) == 0 {
				delete(x, k)
			}
		}
		return x
	case []any:
		for i := range x {
			x[i] = rewrite(x[i], key, num)
		}
		return x
	case float64:
		switch {
		case key == "mode" && x >= 0:
			return fmt.Sprintf("0%o", int64(x))
		case key == "timestamp":
			return time.Unix(0, int64(x)).UTC().Format(time.RFC3339Nano)
		}
		return x
	case string:
		if n, ok := num[x]; ok {
			return n
		}
		if key == "data" {
			return fileData(x)
		}
		return x
	}
	return v
}

// fileData shows base64 file contents as text when short and printable.
func fileData(b64 string) string {
	var data []byte
	if err := json.Unmarshal([]byte(`"`+b64+`"`), &data); err != nil {
		return b64
	}
	if len(data) <= 512 && utf8.Valid(data) && !bytes.ContainsFunc(data, func(r rune) bool { return r < ' ' && r != '\n' && r != '\t' }) {
		return string(data)
	}
	return fmt.Sprintf("%s (%d bytes)", digest.FromBytes(data), len(data))
}
