package llbgen

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

func TestFiles(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	ctxState := llb.Local("context")
	o.Context = &ctxState
	cfg := parseFile(t, "testdata/files.yml")
	sm := llb.NewSourceMap(nil, "testdata/files.yml", "yaml", []byte("x"))
	o.SourceMaps = map[string]*llb.SourceMap{"testdata/files.yml": sm}
	o.Sources = map[string]string{"conf/app.conf": "conf/app.conf"}
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	def, err := res.Output.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mkfile, mkdir, symlink, cp []string
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		for _, a := range op.GetFile().GetActions() {
			switch {
			case a.GetMkfile() != nil:
				f := a.GetMkfile()
				mkfile = append(mkfile, f.GetPath()+"|"+octal(f.GetMode())+"|"+string(f.GetData()))
			case a.GetMkdir() != nil:
				d := a.GetMkdir()
				mkdir = append(mkdir, d.GetPath()+"|"+octal(d.GetMode())+"|"+uid(d.GetOwner()))
			case a.GetSymlink() != nil:
				symlink = append(symlink, a.GetSymlink().GetNewpath()+"->"+a.GetSymlink().GetOldpath())
			case a.GetCopy() != nil:
				c := a.GetCopy()
				cp = append(cp, c.GetSrc()+"|"+c.GetDest()+"|"+octal(c.GetMode())+"|"+uid(c.GetOwner()))
			}
		}
	}
	has := func(list []string, want string) bool {
		for _, x := range list {
			if x == want {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"/etc/motd|644|hello\n"} {
		if !has(mkfile, want) {
			t.Errorf("no mkfile %q in %q", want, mkfile)
		}
	}
	// var/lib/app is owned by the container "app" (the first one: uid 100);
	// missing parents get the entry mode plus x where r or w is set (0700 for a directory, 0755 for 0644, 0750 for 0640).
	for _, want := range []string{"/var/lib|700|100:0", "/etc|755|0:0", "/etc|750|0:7"} {
		if !has(mkdir, want) {
			t.Errorf("no mkdir %q in %q", want, mkdir)
		}
	}
	// A directory entry is copied with a chmod and chown, so that one that
	// exists gets the entry's mode and owner too.
	if want := "/entry|/var/lib|700|100:0"; !has(cp, want) {
		t.Errorf("no copy %q in %q", want, cp)
	}
	if !has(symlink, "/etc/localtime->/usr/share/zoneinfo/UTC") {
		t.Errorf("symlinks %q", symlink)
	}
	// a resolved source is copied by its name, never as a wildcard
	if !has(cp, "/conf/app.conf|/etc/app.conf|640|0:7") {
		t.Errorf("copies %q", cp)
	}
	// every files op carries its YAML position
	if len(def.Source.GetLocations()) == 0 {
		t.Error("no source locations in the definition")
	}
}

func octal(m int32) string { return strconv.FormatInt(int64(m), 8) }

func uid(o *pb.ChownOpt) string {
	var u, g int64
	if o.GetUser() != nil {
		u = int64(o.GetUser().GetByID())
	}
	if o.GetGroup() != nil {
		g = int64(o.GetGroup().GetByID())
	}
	return strconv.FormatInt(u, 10) + ":" + strconv.FormatInt(g, 10)
}

// fakeContext is a build context for ResolveSources: path -> entry
// (directories listed explicitly).
type fakeContext map[string]ContextEntry

func (c fakeContext) lstat(t *testing.T) ContextLstat {
	return func(_ context.Context, p string) (ContextEntry, error) {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if e, ok := c[d]; !ok || !e.Mode.IsDir() {
				t.Errorf("lstat(%s): its directory %s is not a directory of the context (%v)", p, d, e)
			}
		}
		if e, ok := c[p]; ok {
			return e, nil
		}
		return ContextEntry{}, fmt.Errorf("lstat %s: %w", p, fs.ErrNotExist)
	}
}

var testContext = fakeContext{
	"top.txt":           {Mode: 0o644},
	"conf":              {Mode: os.ModeDir | 0o755},
	"conf/app.conf":     {Mode: 0o644},
	"conf/link":         {Mode: os.ModeSymlink | 0o777, Linkname: "app.conf"},
	"conf/chain":        {Mode: os.ModeSymlink | 0o777, Linkname: "./link"},
	"conf/up":           {Mode: os.ModeSymlink | 0o777, Linkname: "../top.txt"},
	"conf/sub":          {Mode: os.ModeDir | 0o755},
	"conf/sub/deep":     {Mode: os.ModeSymlink | 0o777, Linkname: "../../conf/sub/../link"},
	"dirlink":           {Mode: os.ModeSymlink | 0o777, Linkname: "conf"},
	"conf/esc":          {Mode: os.ModeSymlink | 0o777, Linkname: "../../etc/passwd"},
	"conf/esc-chain":    {Mode: os.ModeSymlink | 0o777, Linkname: "sub/../esc"},
	"conf/abs":          {Mode: os.ModeSymlink | 0o777, Linkname: "/etc/passwd"},
	"conf/dangling":     {Mode: os.ModeSymlink | 0o777, Linkname: "nowhere"},
	"conf/to-dir":       {Mode: os.ModeSymlink | 0o777, Linkname: "sub"},
	"conf/loop1":        {Mode: os.ModeSymlink | 0o777, Linkname: "loop2"},
	"conf/loop2":        {Mode: os.ModeSymlink | 0o777, Linkname: "loop1"},
	"conf/fifo":         {Mode: os.ModeNamedPipe | 0o644},
	"conf/file-as-dir":  {Mode: os.ModeSymlink | 0o777, Linkname: "app.conf/x"},
	"conf/to-root":      {Mode: os.ModeSymlink | 0o777, Linkname: ".."},
	"conf/sub/relative": {Mode: os.ModeSymlink | 0o777, Linkname: "../../top.txt"},
}

// TestResolveSources: symlinks among files[].source are followed inside the
// build context (LinuxKit copies the file a symlink points to); leaving
// the context, directories and missing files are errors at the entry's
// line, except a missing optional source, which is skipped.
func TestResolveSources(t *testing.T) {
	ok := map[string]string{
		"conf/app.conf":      "conf/app.conf",
		"./conf/app.conf":    "conf/app.conf",
		"conf/link":          "conf/app.conf",
		"conf/chain":         "conf/app.conf",
		"conf/up":            "top.txt",
		"conf/sub/deep":      "conf/app.conf",
		"dirlink/link":       "conf/app.conf",
		"dirlink/../top.txt": "top.txt",
		"conf/sub/relative":  "top.txt",
	}
	for src, want := range ok {
		cfg, err := spec.Parse("x.yml", []byte("files:\n  - path: etc/a\n    source: "+src+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ResolveSources(context.Background(), cfg, testContext.lstat(t), nil)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got[ContextPath(src)] != want || len(got) != 1 {
			t.Errorf("%s resolved to %v, want %s", src, got, want)
		}
	}

	bad := map[string]string{
		"conf/esc":           "symlink conf/esc -> ../../etc/passwd leaves the build context",
		"conf/esc-chain":     "conf/esc-chain: symlink conf/esc -> ../../etc/passwd leaves the build context",
		"../secret":          "../secret is outside the build context (sources are read from the context only)",
		"conf/../../secret":  "conf/../../secret is outside the build context",
		"/etc/shadow":        "/etc/shadow is outside the build context (sources are read from the context only)",
		"/conf/app.conf":     "/conf/app.conf is outside the build context",
		"/":                  "/ is outside the build context",
		"/proc/self/environ": "/proc/self/environ is outside the build context",
		"/dev/zero":          "/dev/zero is outside the build context",
		"~/.ssh/id_rsa.pub":  "~/.ssh/id_rsa.pub is outside the build context (sources are read from the context only; ~ is not expanded)",
		"conf/abs":           "symlink conf/abs -> /etc/passwd points to an absolute path, which is not followed",
		"conf/dangling":      "symlink conf/dangling -> nowhere is dangling: conf/nowhere does not exist in the build context (optional: true skips a missing source)",
		"conf/missing":       "conf/missing does not exist in the build context (optional: true skips a missing source)",
		"conf/to-dir":        "conf/to-dir leads to the directory conf/sub (a source must be a file)",
		"conf":               "conf is a directory (a source must be a file)",
		"conf/to-root":       "conf/to-root leads to the root of the build context",
		"conf/loop1":         "conf/loop1: too many levels of symlinks",
		"conf/fifo":          "conf/fifo is not a regular file",
		"conf/file-as-dir":   "conf/app.conf is not a directory, so conf/file-as-dir does not exist",
		"dirlink/esc-chain":  "dirlink/esc-chain: symlink conf/esc -> ../../etc/passwd leaves the build context",
	}
	for src, want := range bad {
		cfg, err := spec.Parse("x.yml", []byte("files:\n  - path: etc/a\n    contents: x\n  - path: etc/b\n    source: "+src+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ResolveSources(context.Background(), cfg, testContext.lstat(t), nil)
		if err == nil {
			t.Errorf("%s: no error", src)
			continue
		}
		if !strings.HasPrefix(err.Error(), "x.yml:5:13: files[1].source: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want x.yml:5:13: files[1].source: ...%s...", src, err, want)
		}
	}

	// A missing or dangling optional source is skipped, as LinuxKit skips
	// one os.Stat cannot read, and so is an optional source outside the
	// context (LinuxKit's ~/.ssh/id_rsa.pub), with a warning; a symlink in
	// the context that leaves it is still an error.
	for src, want := range map[string]string{
		"conf/missing": "", "conf/dangling": "", "conf/esc": "error", "conf/to-dir": "error",
		"~/.ssh/id_rsa.pub": "x.yml:3:13: files[0].source: ~/.ssh/id_rsa.pub is outside the build context (sources are read from the context only; ~ is not expanded): skipped (optional: true)",
		"/etc/ssh/key":      "x.yml:3:13: files[0].source: /etc/ssh/key is outside the build context (sources are read from the context only): skipped (optional: true)",
		"../key":            "x.yml:3:13: files[0].source: ../key is outside the build context (sources are read from the context only): skipped (optional: true)",
	} {
		cfg, err := spec.Parse("x.yml", []byte("files:\n  - path: etc/a\n    source: "+src+"\n    optional: true\n"))
		if err != nil {
			t.Fatal(err)
		}
		var warnings []string
		got, err := ResolveSources(context.Background(), cfg, testContext.lstat(t), func(w Warning) { warnings = append(warnings, w.String()) })
		if (err != nil) != (want == "error") || len(got) != 0 {
			t.Errorf("optional %s: %v, error %v (want: %s)", src, got, err, want)
		}
		if want != "error" && strings.Join(warnings, "\n") != want {
			t.Errorf("optional %s: warnings %q, want %q", src, warnings, want)
		}
	}

	// Every source is checked: all the errors come at once, each at its
	// own source.
	cfg, err := spec.Parse("x.yml", []byte("files:\n  - path: etc/a\n    source: /etc/shadow\n  - path: etc/b\n    source: conf/missing\n  - path: etc/c\n    source: conf/app.conf\n  - path: etc/d\n    source: ~/x\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ResolveSources(context.Background(), cfg, testContext.lstat(t), nil)
	var all spec.Errors
	if !errors.As(err, &all) || len(all) != 3 || all[0].Line != 3 || all[1].Line != 5 || all[2].Line != 9 {
		t.Errorf("three bad sources: %v, want errors at lines 3, 5 and 9", err)
	}

	// A failure to read the context is returned as it is, not as a YAML
	// error.
	cfg, _ = spec.Parse("x.yml", []byte("files:\n  - path: etc/a\n    source: conf/app.conf\n"))
	boom := errors.New("connection lost")
	_, err = ResolveSources(context.Background(), cfg, func(context.Context, string) (ContextEntry, error) { return ContextEntry{}, boom }, nil)
	var se spec.Errors
	if !errors.Is(err, boom) || errors.As(err, &se) {
		t.Errorf("lookup failure: %v", err)
	}
}

// TestResolvedSourceCopy: with resolved sources, the files op copies the
// file a symlink names, and an optional source that is not there makes no
// op at all (LinuxKit skips the entry, parents included).
func TestResolvedSourceCopy(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	ctxState := llb.Local("context")
	o.Context = &ctxState
	cfg, err := spec.Parse("x.yml", []byte("files:\n  - path: etc/a\n    source: conf/link\n    mode: \"0640\"\n  - path: opt/b/c\n    source: conf/gone\n    optional: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	o.Sources = map[string]string{"conf/link": "conf/app.conf"}
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	var cp, dirs []string
	for _, op := range ops(t, res.Output) {
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil && c.GetSrc() != emptyDirPath {
				cp = append(cp, c.GetSrc()+"|"+c.GetDest()+"|"+octal(c.GetMode())+"|"+strconv.FormatBool(c.GetAllowWildcard()))
			}
			if d := a.GetMkdir(); d != nil {
				dirs = append(dirs, d.GetPath())
			}
		}
	}
	if strings.Join(cp, " ") != "/conf/app.conf|/etc/a|640|false" {
		t.Errorf("copies %q, want only /conf/app.conf -> /etc/a", cp)
	}
	if slices.Contains(dirs, "/opt/b") {
		t.Errorf("a missing optional source made its parents: %q", dirs)
	}
}

// TestOptionalSourcesOutsideNoContext: a YAML whose only sources are
// optional ones outside the context builds without a context, the
// entries skipped (the frontend reads no context for it).
func TestOptionalSourcesOutsideNoContext(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	cfg, err := spec.Parse("x.yml", []byte("files:\n  - path: root/.ssh/authorized_keys\n    source: ~/.ssh/id_rsa.pub\n    optional: true\n  - path: etc/a\n    contents: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops(t, res.Output) {
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil && c.GetSrc() != emptyDirPath {
				t.Errorf("copy %s -> %s for a skipped source", c.GetSrc(), c.GetDest())
			}
			if d := a.GetMkdir(); d != nil && strings.HasPrefix(d.GetPath(), "/root") {
				t.Errorf("mkdir %s for a skipped source", d.GetPath())
			}
		}
	}
}

// TestSourcePaths: the context paths to transfer are the sources, clean and
// once each, as written (glob characters included), without those outside
// the context or naming its root.
func TestSourcePaths(t *testing.T) {
	cfg, err := spec.Parse("x.yml", []byte(`files:
  - {path: a, source: conf/b}
  - {path: b, source: ./conf//b}
  - {path: c, source: ./conf/../top.txt}
  - {path: d, source: ../outside}
  - {path: e, source: /}
  - {path: f, contents: x}
  - {path: g, source: /etc/shadow, optional: true}
  - {path: h, source: ~/.ssh/id_rsa.pub, optional: true}
  - {path: i, source: .}
  - {path: j, source: "conf/[a]*"}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := "conf/[a]* conf/b top.txt"
	if got := strings.Join(SourcePaths(cfg), " "); got != want {
		t.Errorf("SourcePaths = %q, want %q", got, want)
	}
}
