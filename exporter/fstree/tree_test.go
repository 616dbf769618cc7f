package fstree

import (
	"errors"
	"strings"
	"testing"
)

// TestTree: entries are linked to their parents in order; a parent that
// comes after its child, or an error of add, stops the walk.
func TestTree(t *testing.T) {
	type node struct {
		name     string
		children []string
	}
	link := func(entries ...string) (map[string]*node, []string, error) {
		var seen []string
		var es []Entry
		for _, p := range entries {
			es = append(es, Entry{Path: p})
		}
		m, err := Tree(&node{name: "/"}, es, func(e Entry, parent *node) (*node, error) {
			if e.Path == "bad" {
				return nil, errBad
			}
			seen = append(seen, e.Path+"<"+parent.name)
			parent.children = append(parent.children, e.Path)
			return &node{name: e.Path}, nil
		})
		return m, seen, err
	}
	m, seen, err := link("a", "a/b", "a/b/c", "d", "a/e")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, " "); got != "a</ a/b<a a/b/c<a/b d</ a/e<a" {
		t.Errorf("add saw %s", got)
	}
	if len(m) != 6 || m[""].name != "/" || strings.Join(m[""].children, " ") != "a d" || strings.Join(m["a"].children, " ") != "a/b a/e" {
		t.Errorf("tree %v", m)
	}
	if _, seen, err := link("a", "x/y", "b"); err == nil || err.Error() != "x/y: parent not walked before it" || len(seen) != 1 {
		t.Errorf("orphan: %v after %v", err, seen)
	}
	if _, _, err := link("a", "bad", "b"); err != errBad {
		t.Errorf("add's error: %v", err)
	}
}

var errBad = errors.New("bad")
