package fstree

import (
	"fmt"
	"path"
)

// Tree links entries (in Walk's order: every entry after its parent
// directory) into a tree of the caller's nodes under root. For each entry
// in order, add receives it with its parent's node (root for a top-level
// entry) and returns the entry's node. It returns the nodes by path ("" is
// root); an entry whose parent does not come before it, or an error from
// add, stops it.
func Tree[N any](root N, entries []Entry, add func(e Entry, parent N) (N, error)) (map[string]N, error) {
	byPath := map[string]N{"": root}
	for _, e := range entries {
		dir := path.Dir(e.Path)
		if dir == "." {
			dir = ""
		}
		parent, ok := byPath[dir]
		if !ok {
			return nil, fmt.Errorf("%s: parent not walked before it", e.Path)
		}
		n, err := add(e, parent)
		if err != nil {
			return nil, err
		}
		byPath[e.Path] = n
	}
	return byPath, nil
}
