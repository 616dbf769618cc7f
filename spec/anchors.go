package spec

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Anchors, aliases and merge keys, as LinuxKit reads them: it decodes its
// YAML with gopkg.in/yaml.v3, so an alias (*name) stands for the value of
// its anchor (&name), and a merge key (<<) adds the keys of a mapping, or
// of each mapping of a list, that the merging mapping does not set itself
// (an earlier mapping of the list wins over a later one). Merged keys are
// checked like written ones, at the position where the anchor writes them.

// mapEntry is one key of a mapping after merges, with the merge aliases
// it came through (outermost first; empty for a key written in place).
type mapEntry struct {
	name     string
	key, val *yaml.Node
	via      []*yaml.Node
}

// isMerge tells whether k is a merge key: a plain (unquoted) <<, as
// yaml.v3 decides it.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// entries returns the keys of the mapping n in effect: its own in order,
// then those its merges add.
func (d *decoder) entries(n *yaml.Node, field string) []mapEntry {
	var out []mapEntry
	d.collect(n, field, len(d.via), map[string]bool{}, &out)
	return out
}

// collect adds the keys of n not yet seen to out; base is the depth of
// d.via where the merges of the mapping being read start.
func (d *decoder) collect(n *yaml.Node, field string, base int, seen map[string]bool, out *[]mapEntry) {
	d.checkDuplicates(n, field)
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			merge = v // a second << is a duplicate key
			continue
		}
		name, ok := d.keyName(k, field)
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		*out = append(*out, mapEntry{name: name, key: k, val: v, via: append([]*yaml.Node(nil), d.via[base:]...)})
	}
	if merge == nil {
		return
	}
	field = join(field, "<<")
	sources := []*yaml.Node{merge}
	if merge.Kind == yaml.SequenceNode {
		sources = merge.Content
	}
	for i, src := range sources {
		f := field
		if merge.Kind == yaml.SequenceNode {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		target := src
		if src.Kind == yaml.AliasNode {
			target = src.Alias
		}
		if target == nil || target.Kind != yaml.MappingNode {
			what := kindName(src)
			if src.Kind == yaml.AliasNode && target != nil {
				what = "an alias of " + strings.TrimPrefix(kindName(target), "the ")
			}
			d.errorf(src, f, "a merge (<<) takes a mapping, an alias of a mapping or a list of those, got %s", what)
			continue
		}
		if src.Kind != yaml.AliasNode {
			d.collect(target, f, base, seen, out)
			continue
		}
		if !d.enter(src) {
			continue
		}
		d.collect(target, f, base, seen, out)
		d.leave()
	}
}

// keyName is the string a mapping key stands for.
func (d *decoder) keyName(k *yaml.Node, field string) (string, bool) {
	n := k
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(k, field, "a key must be a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// checkDuplicates reports a key written twice in the mapping n (once per
// mapping, however often an alias repeats it).
func (d *decoder) checkDuplicates(n *yaml.Node, field string) {
	if d.checked[n] {
		return
	}
	d.checked[n] = true
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		name := "<<"
		if !isMerge(k) {
			var ok bool
			if name, ok = d.keyName(k, field); !ok {
				continue
			}
		}
		if seen[name] {
			d.errorf(k, join(field, name), "duplicate key")
		}
		seen[name] = true
	}
}

// enter starts the expansion of the alias a, unless a is inside its own
// anchor (reported by selfAliases; expanding it would never end).
func (d *decoder) enter(a *yaml.Node) bool {
	if d.selfRef[a] {
		return false
	}
	d.via = append(d.via, a)
	return true
}

func (d *decoder) leave() { d.via = d.via[:len(d.via)-1] }

// within runs f with the merge aliases of an entry being expanded (the
// entry's value is inside their anchors).
func (d *decoder) within(e mapEntry, f func()) {
	depth := len(d.via)
	defer func() { d.via = d.via[:depth] }()
	for _, a := range e.via {
		if !d.enter(a) {
			return
		}
	}
	f()
}

// viaNote says through which aliases the decoder reached the value being
// decoded, innermost first: "(anchor &a, used at 8:7)".
func (d *decoder) viaNote() string {
	var parts []string
	for i := len(d.via) - 1; i >= 0; i-- {
		a := d.via[i]
		parts = append(parts, fmt.Sprintf("anchor &%s, used at %d:%d", a.Value, a.Line, a.Column))
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// selfAliases finds the aliases written inside their own anchor, such as
// `env: &e [a, *e]`: yaml.v3 refuses them ("anchor value contains itself")
// wherever they are, and a decoder following one would never end. Every
// cycle of aliases has one (an alias can only name an anchor that starts
// before it).
func selfAliases(file string, doc *yaml.Node) (map[*yaml.Node]bool, Errors) {
	self := map[*yaml.Node]bool{}
	var errs Errors
	open := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, field string)
	walk = func(n *yaml.Node, field string) {
		if n.Kind == yaml.AliasNode {
			if open[n.Alias] {
				self[n] = true
				errs = append(errs, &Error{File: file, Line: n.Line, Col: n.Column, Field: field, Msg: fmt.Sprintf(
					"alias *%s is inside its own anchor &%s (at %d:%d): a value cannot contain itself", n.Value, n.Value, n.Alias.Line, n.Alias.Column)})
			}
			return
		}
		open[n] = true
		for i, c := range n.Content {
			switch n.Kind {
			case yaml.MappingNode:
				f := field
				if i%2 == 1 {
					f = join(field, n.Content[i-1].Value)
				}
				walk(c, f)
			case yaml.SequenceNode:
				walk(c, fmt.Sprintf("%s[%d]", field, i))
			default:
				walk(c, field)
			}
		}
		delete(open, n)
	}
	walk(doc, "")
	return self, errs
}

// Limits on alias expansion. LinuxKit first decodes the whole file with
// yaml.v3, which refuses a document that aliases expand too much
// ("document contains excessive aliasing": more than 99% of the decoded
// values from aliases in a document of up to 400,000 values, scaling down
// to 10% at 4 million). lkbuild runs that same check, so it accepts
// exactly what LinuxKit accepts. When the check stops early on another
// error (the document is refused anyway), the decoder still expands at
// most aliasBudget values from aliases, about what yaml.v3 allows.
const aliasBudget = 400_000

// checkAliasing decodes the document as LinuxKit's first step does. It
// returns an error for excessive aliasing, placed at the alias that
// expands most, and otherwise the error yaml.v3 found, if any (the
// decoder reports most of those itself with their position).
func checkAliasing(file string, doc *yaml.Node) (excessive *Error, other error) {
	var raw any
	err := doc.Decode(&raw)
	if err == nil {
		return nil, nil
	}
	if !strings.Contains(err.Error(), "excessive aliasing") {
		return nil, err
	}
	a, size, total := largestAlias(doc)
	if a == nil {
		return &Error{File: file, Line: 1, Col: 1, Msg: "the document contains excessive aliasing"}, nil
	}
	return &Error{File: file, Line: a.Line, Col: a.Column, Msg: fmt.Sprintf(
		"the document contains excessive aliasing, which LinuxKit's YAML library refuses: its aliases expand it to %s YAML nodes; the largest, *%s here, to %s",
		sizeString(total), a.Value, sizeString(size))}, nil
}

const maxSize = 1 << 60

func sizeString(n int) string {
	if n >= maxSize {
		return "an unbounded number of"
	}
	return fmt.Sprint(n)
}

// largestAlias returns the alias node of doc that stands for the most
// nodes once expanded, that number and the size of the whole expanded
// document (saturated at maxSize; an anchor containing itself counts as
// maxSize).
func largestAlias(doc *yaml.Node) (alias *yaml.Node, size, total int) {
	memo := map[*yaml.Node]int{}
	var expanded func(n *yaml.Node) int
	expanded = func(n *yaml.Node) int {
		if s, ok := memo[n]; ok {
			return s
		}
		memo[n] = maxSize
		s := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s = min(maxSize, s+expanded(n.Alias))
		}
		for _, c := range n.Content {
			s = min(maxSize, s+expanded(c))
		}
		memo[n] = s
		return s
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode {
			if s := expanded(n); s > size {
				alias, size = n, s
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	return alias, size, expanded(doc)
}
