package spec

import (
	"fmt"
	"strings"
)

// Positions are kept per YAML node, not per entry: the decoder records
// where every value of a file is written, by its field path in that file
// (services[0].capabilities[1]), and each entry keeps its own path and
// that record, so a check of any value, even after several files are
// merged, reports the value's own line and column and its index in its
// own file.

// nodePos is where one value is written. A value reached through aliases
// is where its anchor writes it; via then says where the aliases are used.
type nodePos struct {
	pos Pos
	via string
}

// maxPositions bounds the record of one file: a document whose aliases
// expand to more values (at most about 400,000, see aliasBudget) is
// located at the nearest recorded parent beyond it.
const maxPositions = 1 << 17

// posTable records where each value of one file (or one image label) is
// written, by field path.
type posTable struct {
	m map[string]nodePos
}

func newPosTable() *posTable { return &posTable{m: map[string]nodePos{}} }

// room tells whether field can be recorded.
func (t *posTable) room(field string) bool {
	if t == nil {
		return false
	}
	if _, ok := t.m[field]; ok {
		return true
	}
	return len(t.m) < maxPositions
}

func (t *posTable) set(field string, p Pos, via string) {
	if t.room(field) {
		t.m[field] = nodePos{pos: p, via: via}
	}
}

// lookup returns where field is written, else where the nearest recorded
// field containing it is.
func (t *posTable) lookup(field string) (nodePos, bool) {
	if t == nil {
		return nodePos{}, false
	}
	for {
		if np, ok := t.m[field]; ok {
			return np, true
		}
		i := strings.LastIndexAny(field, ".[")
		if i <= 0 {
			return nodePos{}, false
		}
		field = field[:i]
	}
}

// Loc is where an entry (or the kernel section) is: its position, its
// field path in its own file (services[2], kernel) and where each of its
// values is written.
type Loc struct {
	Pos   Pos
	Field string
	table *posTable
}

// sub joins the entry's field path and a path relative to the entry:
// "name", "capabilities[1]", "devices[0].mode"; "" is the entry.
func (l Loc) sub(rel string) string {
	switch {
	case rel == "":
		return l.Field
	case l.Field == "" || strings.HasPrefix(rel, "["):
		return l.Field + rel
	}
	return l.Field + "." + rel
}

// At returns the position of the value at rel (a path relative to the
// entry; "" for the entry itself), or of the entry when that value is not
// written.
func (l Loc) At(rel string) Pos {
	p, _ := l.at(rel)
	return p
}

func (l Loc) at(rel string) (Pos, string) {
	if rel == "" {
		return l.Pos, ""
	}
	if np, ok := l.table.lookup(l.sub(rel)); ok && np.pos.Line > 0 {
		return np.pos, np.via
	}
	return l.Pos, ""
}

// written tells whether the value at rel is written in the file.
func (l Loc) written(rel string) bool {
	if l.table == nil {
		return false
	}
	_, ok := l.table.m[l.sub(rel)]
	return ok
}

// Errorf is an error about the value at rel (a path relative to the
// entry, such as "path" or "binds[1]"), at its position in the YAML, for
// checks made after parsing (llbgen's, once the images are read).
func (l Loc) Errorf(rel, format string, args ...any) *Error {
	return l.errorAt(rel, format, args...)
}

// errorAt is an error about the value at rel, at its position.
func (l Loc) errorAt(rel, format string, args ...any) *Error {
	p, via := l.at(rel)
	return &Error{File: p.File, Line: p.Line, Col: p.Col, Field: l.sub(rel), Msg: fmt.Sprintf(format, args...) + via}
}

// errorf adds an error about the value at rel to errs.
func (l Loc) errorf(errs *errorList, rel, format string, args ...any) {
	errs.errs = append(errs.errs, l.errorAt(rel, format, args...))
}
