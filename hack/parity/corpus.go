package parity

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lkbuild/lkbuild/spec"
	"gopkg.in/yaml.v3"
)

// Namespace is where the stand-in images live: every image reference of
// the corpus is rewritten below it, identically for linuxkit and lkbuild,
// so the stand-ins never collide with the boot-tested images of the local
// registry (127.0.0.1:5000/linuxkit/..., /library/busybox, /lkbuild/...).
const Namespace = "127.0.0.1:5000/parity/"

// Input is one build of the corpus: YAML files merged in order (paths
// relative to Dir) and the key naming its manifest.
type Input struct {
	Dir   string
	Files []string
	Key   string
}

// Corpus lists every input of the comparison: spec's corpus
// (spec/testdata/linuxkit, see Inputs) and this package's extra inputs
// (hack/parity/testdata/extra), below the repository root.
func Corpus(root string) ([]Input, error) {
	inputs, err := Inputs(filepath.Join(root, "spec", "testdata", "linuxkit"))
	if err != nil {
		return nil, err
	}
	extra, err := ExtraInputs(filepath.Join(root, "hack", "parity", "testdata", "extra"))
	return append(inputs, extra...), err
}

// ExtraInputs lists the YAML files of dir, one input each, keyed
// extra__<name>: cases the LinuxKit corpus does not cover.
func ExtraInputs(dir string) ([]Input, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("extra inputs: %w", err)
	}
	var inputs []Input
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".yml") {
			in := NewInput(dir, e.Name())
			in.Key = "extra__" + in.Key
			inputs = append(inputs, in)
		}
	}
	return inputs, nil
}

// Inputs lists the corpus of spec's config.json parity test, in the same
// order: every YAML under examples/, cases/ and lkbuild/ of corpus, then the
// groups of groups.txt (files LinuxKit's tests merge).
func Inputs(corpus string) ([]Input, error) {
	var inputs []Input
	for _, dir := range []string{"examples", "cases", "lkbuild"} {
		err := filepath.WalkDir(filepath.Join(corpus, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yml") {
				rel, err := filepath.Rel(corpus, p)
				if err != nil {
					return err
				}
				inputs = append(inputs, NewInput(corpus, filepath.ToSlash(rel)))
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
	}
	groups, err := os.ReadFile(filepath.Join(corpus, "groups.txt"))
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	for _, line := range strings.Split(string(groups), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(line, "#") {
			inputs = append(inputs, NewInput(corpus, f...))
		}
	}
	return inputs, nil
}

// NewInput makes the input merging files of dir, keyed as spec's golden
// files are.
func NewInput(dir string, files ...string) Input {
	return Input{Dir: dir, Files: files, Key: strings.ReplaceAll(strings.Join(files, "+"), "/", "__")}
}

// Role is how the corpus uses an image; it decides the stand-in's shape.
type Role string

// The roles of an image reference in a LinuxKit YAML.
const (
	RoleKernel    Role = "kernel"
	RoleInit      Role = "init"
	RoleContainer Role = "container" // onboot, onshutdown, services
	RoleVolume    Role = "volume"
)

// Prepared is an input made buildable offline: its YAML files with image
// references rewritten into Namespace, and a build context holding a
// stand-in for every relative files[].source.
type Prepared struct {
	Files   []string // absolute paths of the rewritten YAML files, in merge order
	Context string   // build context; also linuxkit's working directory
}

// Prepare writes the input's rewritten YAML files under dir/yaml and its
// build context under dir/context.
func Prepare(in Input, dir string) (Prepared, error) {
	p := Prepared{Context: filepath.Join(dir, "context")}
	if err := os.MkdirAll(p.Context, 0o755); err != nil {
		return p, err
	}
	for _, f := range in.Files {
		dt, err := os.ReadFile(filepath.Join(in.Dir, f))
		if err != nil {
			return p, err
		}
		// A file that is not YAML is kept as it is: both tools refuse it.
		doc, err := scan(dt)
		if err != nil {
			doc = &document{}
		}
		out, err := doc.rewrite(dt)
		if err != nil {
			return p, fmt.Errorf("%s: %w", f, err)
		}
		name := filepath.Join(dir, "yaml", filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return p, err
		}
		if err := os.WriteFile(name, out, 0o644); err != nil {
			return p, err
		}
		p.Files = append(p.Files, name)
		for _, src := range doc.sources {
			if err := writeSource(p.Context, src); err != nil {
				return p, fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return p, nil
}

// writeSource creates the stand-in of a files[].source path in the
// context. Paths outside the context (absolute, ~/, ..) get none: the
// corpus marks those optional, so both tools skip them. A .toml source is
// a symlink to the real file beside it, as configuration often is.
func writeSource(ctx, src string) error {
	clean := path.Clean(src)
	if path.IsAbs(clean) || strings.HasPrefix(clean, "~") || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil
	}
	name := filepath.Join(ctx, filepath.FromSlash(clean))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	body := []byte("#!/bin/sh\n# stand-in for " + clean + "\necho " + path.Base(clean) + "\n")
	if strings.HasSuffix(clean, ".toml") {
		target := path.Base(clean) + ".real"
		if err := os.WriteFile(filepath.Join(filepath.Dir(name), target), []byte("# stand-in for "+clean+"\n[plugins]\n"), 0o644); err != nil {
			return err
		}
		_ = os.Remove(name)
		return os.Symlink(target, name)
	}
	return os.WriteFile(name, body, 0o755)
}

// ref is one image reference in a YAML file.
type ref struct {
	node *yaml.Node
	role Role
}

type document struct {
	refs    []ref
	sources []string
}

// scan finds the image references and files[].source paths of a LinuxKit
// YAML file.
func scan(dt []byte) (*document, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(dt, &root); err != nil {
		return nil, err
	}
	doc := &document{}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return doc, nil
	}
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i].Value, top.Content[i+1]
		switch key {
		case "kernel":
			if img := field(val, "image"); img != nil {
				doc.add(img, RoleKernel)
			}
		case "init":
			if val = unalias(val); val.Kind == yaml.SequenceNode {
				for _, n := range val.Content {
					doc.add(n, RoleInit)
				}
			}
		case "onboot", "onshutdown", "services", "volumes":
			role := RoleContainer
			if key == "volumes" {
				role = RoleVolume
			}
			if val = unalias(val); val.Kind == yaml.SequenceNode {
				for _, n := range val.Content {
					if img := field(n, "image"); img != nil {
						doc.add(img, role)
					}
				}
			}
		case "files":
			if val.Kind == yaml.SequenceNode {
				for _, n := range val.Content {
					if s := field(n, "source"); s != nil && s.Kind == yaml.ScalarNode && s.Value != "" {
						doc.sources = append(doc.sources, s.Value)
					}
				}
			}
		}
	}
	return doc, nil
}

func (d *document) add(n *yaml.Node, role Role) {
	n = unalias(n)
	if n.Kind == yaml.ScalarNode && n.Value != "" && n.Tag == "!!str" {
		d.refs = append(d.refs, ref{node: n, role: role})
	}
}

// unalias returns the node an alias names (the anchored node, whose text
// is what a rewrite changes).
func unalias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// field returns the value of the mapping's key name as a YAML decoder sees
// it: the mapping's own key, else the first merged mapping (`<<: *a`,
// `<<: {...}`, `<<: [*a, *b]`, earlier first) that has it.
func field(m *yaml.Node, name string) *yaml.Node {
	return fieldDepth(m, name, 0)
}

func fieldDepth(m *yaml.Node, name string, depth int) *yaml.Node {
	m = unalias(m)
	if m.Kind != yaml.MappingNode || depth > 100 {
		return nil
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case k.Value == name && k.Tag != "!!merge":
			return v
		case k.Tag == "!!merge":
			if v = unalias(v); v.Kind == yaml.SequenceNode {
				merges = append(merges, v.Content...)
			} else {
				merges = append(merges, v)
			}
		}
	}
	for _, mm := range merges {
		if v := fieldDepth(mm, name, depth+1); v != nil {
			return v
		}
	}
	return nil
}

// rewrite replaces each image reference in the text in place, so that the
// rest of the file (and every position in it) keeps its bytes.
func (d *document) rewrite(dt []byte) ([]byte, error) {
	// An aliased reference is one node, rewritten once.
	var refs []ref
	seen := map[*yaml.Node]bool{}
	for _, r := range d.refs {
		if !seen[r.node] {
			seen[r.node] = true
			refs = append(refs, r)
		}
	}
	// Replace from the end so earlier positions stay valid.
	sort.Slice(refs, func(i, j int) bool {
		a, b := refs[i].node, refs[j].node
		return a.Line > b.Line || a.Line == b.Line && a.Column > b.Column
	})
	out := append([]byte(nil), dt...)
	for _, r := range refs {
		n := r.node
		// The node's line and column are yaml.v3's (any line break,
		// columns in characters): spec.Offset counts the same way.
		at, ok := spec.Offset(out, n.Line, n.Column)
		if !ok {
			return nil, fmt.Errorf("image %q: no place %d:%d in the file", n.Value, n.Line, n.Column)
		}
		if n.Anchor != "" && at < len(out) && out[at] == '&' {
			// `&name value`: the position is the anchor's.
			at += 1 + len(n.Anchor)
			for at < len(out) && (out[at] == ' ' || out[at] == '\t') {
				at++
			}
		}
		if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
			at++
		}
		if at+len(n.Value) > len(out) || string(out[at:at+len(n.Value)]) != n.Value {
			return nil, fmt.Errorf("%d:%d: image %q is not written as a plain scalar", n.Line, n.Column, n.Value)
		}
		out = append(append(append([]byte(nil), out[:at]...), Rewrite(n.Value)...), out[at+len(n.Value):]...)
	}
	return out, nil
}

// Rewrite maps an image reference of the corpus into Namespace: the
// repository path as LinuxKit expands it (library/ for Docker Hub's
// official images), the tag kept as written, none added. A reference that
// is not an image name is kept, so both tools reject it the same way.
func Rewrite(ref string) string {
	name, tag := splitRef(ref)
	if !validName(name) {
		return ref
	}
	out := Namespace + repoPath(name)
	if tag != "" {
		out += ":" + tag
	}
	return out
}

// splitRef splits name[:tag][@digest] into the name and the rest after
// the colon (tag and digest).
func splitRef(ref string) (string, string) {
	slash := strings.LastIndex(ref, "/")
	if i := strings.Index(ref[slash+1:], ":"); i >= 0 {
		return ref[:slash+1+i], ref[slash+2+i:]
	}
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i], ref[i:]
	}
	return ref, ""
}

// repoPath returns a reference's repository path on Docker Hub.
func repoPath(name string) string {
	parts := strings.Split(name, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if parts[0] == "docker.io" || parts[0] == "index.docker.io" {
			parts = parts[1:]
		} else {
			return name
		}
	}
	if len(parts) == 1 {
		return "library/" + parts[0]
	}
	return strings.Join(parts, "/")
}

func validName(name string) bool {
	if name == "" || strings.HasPrefix(name, "@") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/:", c)) {
			return false
		}
	}
	return true
}

// ImageUse is an image of the corpus (as rewritten) and every role it has
// anywhere in the corpus.
type ImageUse struct {
	Ref   string
	Roles map[Role]bool
}

// Images lists every image reference the inputs use, rewritten, sorted.
func Images(inputs []Input) ([]ImageUse, error) {
	uses := map[string]map[Role]bool{}
	seen := map[string]bool{}
	for _, in := range inputs {
		for _, f := range in.Files {
			name := filepath.Join(in.Dir, f)
			if seen[name] {
				continue
			}
			seen[name] = true
			dt, err := os.ReadFile(name)
			if err != nil {
				return nil, err
			}
			doc, err := scan(dt)
			if err != nil {
				continue // not YAML: refused by both tools, uses no image
			}
			for _, r := range doc.refs {
				name := Rewrite(r.node.Value)
				if !strings.HasPrefix(name, Namespace) {
					continue
				}
				if uses[name] == nil {
					uses[name] = map[Role]bool{}
				}
				uses[name][r.role] = true
			}
		}
	}
	var out []ImageUse
	for name, roles := range uses {
		out = append(out, ImageUse{Ref: name, Roles: roles})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}
