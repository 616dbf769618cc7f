package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/lkbuild/lkbuild"

const (
	buildkit      = "github.com/moby/buildkit"
	gatewayClient = "github.com/moby/buildkit/frontend/gateway/client"
)

// rule is one promise of a package's doc comment and what it forbids.
type rule struct {
	// pkgs are the packages the rule applies to, relative to the module;
	// a trailing "/..." takes the packages below too, and "..." alone
	// every package of the module.
	pkgs string
	// except are packages (relative to the module) the rule leaves out.
	except []string
	// doc is the package, relative to the module, whose doc comment makes
	// the promise, and promise the words it must contain (spacing aside).
	doc, promise string
	// forbid are import paths that must not be among the packages'
	// dependencies (a path forbids the packages below it too); direct
	// checks only the packages' own imports.
	forbid []string
	direct bool
	// stdOnly allows only standard-library dependencies.
	stdOnly bool
}

var rules = []rule{
	{pkgs: "spec", doc: "spec", promise: "must not import BuildKit", forbid: []string{buildkit}},
	{pkgs: "exporter/...", doc: "exporter", promise: "subpackages must not import github.com/moby/buildkit", forbid: []string{buildkit}},
	{pkgs: "exporter/mkimage", doc: "exporter/mkimage", promise: "it knows nothing of BuildKit", forbid: []string{buildkit}},
	{pkgs: "llbgen", doc: "llbgen", promise: "must not import the gateway client, the frontend or the artifact writers (exporter/...)",
		forbid: []string{gatewayClient, module + "/frontend", module + "/exporter"}},
	{pkgs: "...", except: []string{"frontend"}, doc: "frontend", promise: "It is the only package that talks to the gateway client",
		forbid: []string{gatewayClient}, direct: true},
	{pkgs: "formats", doc: "formats", promise: "it imports only the standard library", stdOnly: true},
	{pkgs: "internal/qemu", doc: "internal/qemu", promise: "imports nothing of lkbuild's", forbid: []string{module + "/"}},
	{pkgs: "hack/parity", doc: "hack/parity", promise: "imports no BuildKit package outside its tests", forbid: []string{buildkit}},
}

// pkg is what go list says of a package.
type pkg struct {
	ImportPath string
	Dir        string
	Standard   bool
	Imports    []string
	Deps       []string
}

// list runs go list -deps over the module, offline: the module cache
// holds everything a build needs.
func list(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,Standard,Imports,Deps", "./...")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = &p
	}
	return pkgs
}

// matches reports whether the module's package path is one of r's.
func (r rule) matches(path string) bool {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return false
	}
	for _, e := range r.except {
		if rel == e {
			return false
		}
	}
	if r.pkgs == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(r.pkgs, "/..."); ok {
		return rel == base || strings.HasPrefix(rel, base+"/")
	}
	return rel == r.pkgs
}

// forbids reports whether r forbids the dependency d.
func (r rule) forbids(d string, pkgs map[string]*pkg) bool {
	if r.stdOnly && !pkgs[d].Standard {
		return true
	}
	for _, f := range r.forbid {
		if under(d, f) {
			return true
		}
	}
	return false
}

// via names the package that p imports on its way to d, when p does not
// import d itself.
func via(pkgs map[string]*pkg, p *pkg, d string) string {
	for _, i := range p.Imports {
		if i == d {
			return ""
		}
	}
	for _, i := range p.Imports {
		if ip, ok := pkgs[i]; ok && slices.Contains(ip.Deps, d) {
			return " through " + i
		}
	}
	return ""
}

func under(path, prefix string) bool {
	return path == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/")
}

// docComment returns the package doc comment of the package in dir, its
// words separated by single spaces.
func docComment(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var doc []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil {
			doc = append(doc, f.Doc.Text())
		}
	}
	return strings.Join(strings.Fields(strings.Join(doc, " ")), " ")
}

// TestImportRules checks every rule: the doc comment still makes the
// promise, and no package it covers depends on (or, for direct rules,
// imports) what the promise forbids.
func TestImportRules(t *testing.T) {
	pkgs := list(t)
	for _, r := range rules {
		docPkg, ok := pkgs[module+"/"+r.doc]
		if !ok {
			t.Errorf("no package %s", r.doc)
			continue
		}
		if !strings.Contains(docComment(t, docPkg.Dir), r.promise) {
			t.Errorf("%s: the package comment no longer says %q: change the rule here with it", r.doc, r.promise)
		}
		n := 0
		for path, p := range pkgs {
			if !r.matches(path) {
				continue
			}
			n++
			deps := p.Deps
			if r.direct {
				deps = p.Imports
			}
			var bad []string
			for _, d := range deps {
				if r.forbids(d, pkgs) {
					bad = append(bad, d)
				}
			}
			if len(bad) > 0 {
				// name a package p imports itself, if there is one
				for _, b := range bad {
					if slices.Contains(p.Imports, b) {
						bad[0] = b
						break
					}
				}
				t.Errorf("%s imports %s%s (%d forbidden packages in all), but %s's comment says %q",
					path, bad[0], via(pkgs, p, bad[0]), len(bad), r.doc, r.promise)
			}
		}
		if n == 0 {
			t.Errorf("rule for %s covers no package", r.pkgs)
		}
	}
}
