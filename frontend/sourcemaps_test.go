package frontend

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/errdefs"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestSourceLinesUnderEveryLineBreak: the YAML lines BuildKit prints under
// a --call check warning and under a build error are the lines the
// positions name, whichever line breaks the file is written with, also
// in UTF-16 (BuildKit splits the data at LF; yaml.v3 counts a lone CR,
// CR LF, NEL, LS and PS too, and reads UTF-16).
func TestSourceLinesUnderEveryLineBreak(t *testing.T) {
	lines := []string{"kernel:", "  image: linuxkit/kernel:6.6.71", "  cmdline: console=tty0", "init:", "  - linuxkit/init", "onboot: []"}
	for _, br := range []string{"\n", "\r", "\r\n", "\u0085", "\u2028", "\u2029", "UTF-16"} {
		data := []byte(strings.Join(lines, br) + br)
		if br == "UTF-16" {
			data = utf16LE(strings.Join(lines, "\n") + "\n")
		}
		smaps := map[string]*llb.SourceMap{"a.yml": lfSourceMap(llb.NewSourceMap(nil, "a.yml", "yaml", data))}

		res, err := checkResults(context.Background(), []spec.Source{{Filename: "a.yml", Data: data}}, smaps, ocispecs.Platform{OS: "linux", Architecture: "amd64"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := res.PrintTo(&out, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "a.yml:5\n") || !strings.Contains(out.String(), ">>>   - linuxkit/init\n") {
			t.Errorf("break %q: the check's warning does not show line 5 (- linuxkit/init):\n%s", br, out.String())
		}

		bad := []byte(strings.Join(append(lines[:3:3], "  cmdlin: x"), br) + br)
		if br == "UTF-16" {
			bad = utf16LE(strings.Join(append(lines[:3:3], "  cmdlin: x"), "\n") + "\n")
		}
		smaps = map[string]*llb.SourceMap{"a.yml": lfSourceMap(llb.NewSourceMap(nil, "a.yml", "yaml", bad))}
		_, err = spec.Load(spec.Source{Filename: "a.yml", Data: bad})
		srcs := errdefs.Sources(withSource(err, smaps))
		out.Reset()
		if len(srcs) == 1 {
			_ = srcs[0].Print(&out)
		}
		if !strings.Contains(out.String(), ">>>   cmdlin: x\n") {
			t.Errorf("break %q: the error %v does not show line 4 (cmdlin: x):\n%s", br, err, out.String())
		}
	}
}

// utf16LE is s in UTF-16 (little-endian) with a byte order mark.
func utf16LE(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune("\ufeff" + s)) {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}

// TestLFSourceMapKeepsLF: a file with LF breaks only keeps its source map.
func TestLFSourceMapKeepsLF(t *testing.T) {
	sm := llb.NewSourceMap(nil, "a.yml", "yaml", []byte("a: 1\nb: 2\n"))
	if lfSourceMap(sm) != sm || lfSourceMap(nil) != nil {
		t.Error("an LF-only source map was copied")
	}
	cr := llb.NewSourceMap(nil, "a.yml", "yaml", []byte("a: 1\rb: 2\r"))
	if got := lfSourceMap(cr); string(got.Data) != "a: 1\nb: 2\n" || string(cr.Data) != "a: 1\rb: 2\r" || got.Filename != "a.yml" {
		t.Errorf("CR source map: %q (original now %q)", got.Data, cr.Data)
	}
}
