package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// YAML syntax errors at their line and column. lkbuild parses with
// gopkg.in/yaml.v3, LinuxKit's YAML library, so that it accepts exactly
// the files LinuxKit accepts. That library's syntax errors carry a line
// only, and not always the right one: a scanner error names the line where
// the token being read starts (a tab in the indentation of the next line
// is reported on the line before), a parser error the line before the
// start of the enclosing collection, and reading errors (a control
// character, invalid UTF-8) and undefined aliases no line at all. The
// functions here find the exact place, asking the same library again:
//   - characters it refuses are found by the rule its reader applies;
//   - an undefined alias is the first "*name" whose removal changes the
//     error;
//   - otherwise the context line is read exactly from an error of the
//     same text after one blank line (which turns the library's count
//     into the line number), and the offending character within it, or
//     the line after it where the error starts, is the shortest prefix
//     of the text that gives the same error.

// parseAll parses every document of data, as Parse does, and returns the
// first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

var syntaxLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parserErrors are the messages of the library's parser (the others are
// its scanner's): their line is counted from 0.
var parserErrors = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
	"unknown problem parsing YAML content":   true,
}

// syntaxError is err, a syntax error the library found in data, at its
// position.
func syntaxError(filename string, data []byte, err error) *Error {
	m := syntaxLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{File: filename, Line: 1, Col: 1, Msg: "YAML syntax: " + err.Error()}
	}
	msg := m[2]
	e := &Error{File: filename, Line: 1, Col: 1, Msg: "YAML syntax: " + msg}
	if m[1] != "" {
		e.Line, _ = strconv.Atoi(m[1])
	}
	t := newText(utf8Text(data))
	switch {
	case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "control characters") || strings.Contains(msg, "surrogate"):
		if off, r, ok := t.badChar(); ok {
			e.Line, e.Col = t.lineCol(off)
			if r >= 0 {
				e.Msg = fmt.Sprintf("YAML syntax: the control character %U is not allowed (write it escaped in a double-quoted string)", r)
			} else {
				e.Msg = "YAML syntax: invalid UTF-8 (the file must be UTF-8 text)"
			}
		}
		return e
	case unknownAnchorRE.MatchString(err.Error()):
		name := unknownAnchorRE.FindStringSubmatch(err.Error())[1]
		e.Msg = fmt.Sprintf("YAML syntax: alias *%s names no anchor (&%s) written before it", name, name)
		if off, ok := t.undefinedAlias(name, err.Error()); ok {
			e.Line, e.Col = t.lineCol(off)
		}
		return e
	}
	line, ok := t.contextLine(msg)
	if !ok {
		return e
	}
	e.Line, e.Col = line, t.firstNonBlank(line)
	switch {
	case strings.HasPrefix(msg, "found a tab character"):
		if off, ok := t.indentTab(line); ok {
			e.Line, e.Col = t.lineCol(off)
		}
	case msg == "found unexpected end of stream":
		if off, ok := t.unclosedQuote(line); ok {
			e.Col = t.col(off)
			e.Msg = "YAML syntax: found unexpected end of stream: this quote is never closed"
		}
	case msg == "did not find expected ',' or ']'" || msg == "did not find expected ',' or '}'":
		open := byte('[')
		if strings.HasSuffix(msg, "'}'") {
			open = '{'
		}
		if off, ok := t.unclosedBracket(line, open); ok {
			e.Col = t.col(off)
			e.Msg = fmt.Sprintf("YAML syntax: %s: this %c is not closed where the list or mapping ends", msg, open)
		}
	case msg == "did not find expected key" || msg == "did not find expected '-' indicator":
		// The line is where the collection starts; the error is at the
		// first line after it that the collection cannot take.
		if l, ok := t.firstFailingLine(line + 1); ok {
			e.Line, e.Col = l, t.firstNonBlank(l)
		}
	default:
		if off, ok := t.firstFailingByte(line); ok {
			e.Col = t.col(off)
		}
	}
	return e
}

// text is a YAML file split into lines as yaml.v3 splits them (lines.go),
// for locating errors.
type text struct {
	data   []byte
	bom    int   // length of a UTF-8 byte order mark
	starts []int // offset of each line (line n starts at starts[n-1])
	ends   []int // offset of the line break ending each line (or the end)
	target string
}

func newText(data []byte) *text {
	t := &text{data: data}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		t.bom = 3
	}
	t.starts = []int{0}
	for i := 0; i < len(data); i++ {
		if n := lineBreak(data, i); n > 0 {
			t.ends = append(t.ends, i)
			i += n - 1
			t.starts = append(t.starts, i+1)
		}
	}
	t.ends = append(t.ends, len(data))
	return t
}

// lineEnd is the offset of the line break ending line n (or the end).
func (t *text) lineEnd(n int) int {
	if n >= 1 && n <= len(t.ends) {
		return t.ends[n-1]
	}
	return len(t.data)
}

func (t *text) lineOf(off int) int {
	lo, hi := 0, len(t.starts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if t.starts[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1
}

// col is the column (in characters, as the library counts) of offset off.
func (t *text) col(off int) int {
	start := t.starts[t.lineOf(off)-1]
	if start == 0 {
		start = t.bom
	}
	if off < start {
		return 1
	}
	return utf8.RuneCount(t.data[start:off]) + 1
}

func (t *text) lineCol(off int) (int, int) { return t.lineOf(off), t.col(off) }

// firstNonBlank is the column of the first character of line n that is
// not a space or tab (1 on a blank line).
func (t *text) firstNonBlank(n int) int {
	if n < 1 || n > len(t.starts) {
		return 1
	}
	start, end := t.starts[n-1], t.lineEnd(n)
	for i := start; i < end; i++ {
		if t.data[i] != ' ' && t.data[i] != '\t' {
			return t.col(i)
		}
	}
	return 1
}

// badChar finds the first character the library's reader refuses: bytes
// that are not UTF-8, and control characters other than tab, line feed
// and carriage return (YAML's printable set). r is -1 for invalid UTF-8.
func (t *text) badChar() (off int, r rune, ok bool) {
	if bytes.HasPrefix(t.data, []byte{0xfe, 0xff}) || bytes.HasPrefix(t.data, []byte{0xff, 0xfe}) {
		return 0, 0, false // UTF-16: not located
	}
	for i := t.bom; i < len(t.data); {
		c, size := utf8.DecodeRune(t.data[i:])
		switch {
		case c == utf8.RuneError && size <= 1:
			return i, -1, true
		case c == 0x09 || c == 0x0a || c == 0x0d || c == 0x85:
		case c >= 0x20 && c <= 0x7e:
		case c >= 0xa0 && c <= 0xd7ff, c >= 0xe000 && c <= 0xfffd, c >= 0x10000 && c <= 0x10ffff:
		default:
			return i, c, true
		}
		i += size
	}
	return 0, 0, false
}

// contextLine is the line the library's error msg is about, read from
// the error it gives for the text after one blank line.
func (t *text) contextLine(msg string) (int, bool) {
	err := parseAll(t.shifted(len(t.data)))
	if err == nil {
		return 0, false
	}
	t.target = err.Error()
	m := syntaxLineRE.FindStringSubmatch(t.target)
	if m == nil || m[1] == "" || m[2] != msg {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	if !parserErrors[msg] {
		n-- // a scanner error counts from 1, and the blank line is one more
	}
	if n < 1 || n > len(t.starts) {
		return 0, false
	}
	return n, true
}

// shifted is the first n bytes of the text after one blank line (behind
// a byte order mark).
func (t *text) shifted(n int) []byte {
	b := make([]byte, 0, n+1)
	b = append(b, t.data[:t.bom]...)
	b = append(b, '\n')
	return append(b, t.data[t.bom:n]...)
}

// failsSame tells whether the first n bytes give the error of the whole
// text.
func (t *text) failsSame(n int) bool {
	err := parseAll(t.shifted(n))
	return err != nil && err.Error() == t.target
}

// firstFailingLine is the first line from `from` on whose end the error
// starts, by bisection.
func (t *text) firstFailingLine(from int) (int, bool) {
	lo, hi := from, len(t.starts)
	if lo > hi || !t.failsSame(t.lineEnd(hi)) {
		return 0, false
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if t.failsSame(t.lineEnd(mid)) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, true
}

// firstFailingByte is the offset of the character of line n whose
// inclusion gives the error, by bisection.
func (t *text) firstFailingByte(n int) (int, bool) {
	start, end := t.starts[n-1], t.lineEnd(n)
	if start < t.bom {
		start = t.bom
	}
	if !t.failsSame(end) {
		return 0, false
	}
	lo, hi := start+1, end
	for lo < hi {
		mid := (lo + hi) / 2
		if t.failsSame(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	// lo bytes give the error: the character ending there causes it.
	off := lo - 1
	for off > start && !utf8.RuneStart(t.data[off]) {
		off--
	}
	return off, true
}

// indentTab finds the first tab in the indentation of a line from line n
// on.
func (t *text) indentTab(n int) (int, bool) {
	for l := n; l <= len(t.starts); l++ {
		for i := t.starts[l-1]; i < t.lineEnd(l); i++ {
			if t.data[i] == '\t' {
				return i, true
			}
			if t.data[i] != ' ' {
				break
			}
		}
	}
	return 0, false
}

// unclosedQuote finds, on line n, the first quote that starts a scalar
// and is never closed.
func (t *text) unclosedQuote(n int) (int, bool) {
	start, end := t.starts[n-1], t.lineEnd(n)
	for i := start; i < end; i++ {
		q := t.data[i]
		if q != '"' && q != '\'' {
			continue
		}
		if i > start && !strings.ContainsRune(" \t[{,:-?", rune(t.data[i-1])) {
			continue
		}
		if !t.quoteCloses(i) {
			return i, true
		}
	}
	return 0, false
}

// quoteCloses tells whether the quoted scalar starting at off ends.
func (t *text) quoteCloses(off int) bool {
	q := t.data[off]
	for i := off + 1; i < len(t.data); i++ {
		switch {
		case q == '"' && t.data[i] == '\\':
			i++
		case t.data[i] == q && q == '\'' && i+1 < len(t.data) && t.data[i+1] == '\'':
			i++
		case t.data[i] == q:
			return true
		}
	}
	return false
}

// unclosedBracket finds, on line n, the innermost [ or { (open) still
// open at the end of the line, else the first one.
func (t *text) unclosedBracket(n int, open byte) (int, bool) {
	start, end := t.starts[n-1], t.lineEnd(n)
	var stack []int
	first := -1
	for i := start; i < end; i++ {
		switch c := t.data[i]; c {
		case '"', '\'':
			if i > start && !strings.ContainsRune(" \t[{,:", rune(t.data[i-1])) {
				continue
			}
			j := i + 1
			for j < end && t.data[j] != c {
				if c == '"' && t.data[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '#':
			if i == start || t.data[i-1] == ' ' || t.data[i-1] == '\t' {
				i = end
			}
		case '[', '{':
			if c == open && first < 0 {
				first = i
			}
			stack = append(stack, i)
		case ']', '}':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	for k := len(stack) - 1; k >= 0; k-- {
		if t.data[stack[k]] == open {
			return stack[k], true
		}
	}
	return first, first >= 0
}

// undefinedAlias finds the alias *name that the library reports as
// undefined (with the error target): the first written "*name" that
// still gives the error when every other one is made a plain word.
func (t *text) undefinedAlias(name, target string) (int, bool) {
	var cands []int
	for off := 0; len(cands) < 64; {
		i := bytes.Index(t.data[off:], []byte("*"+name))
		if i < 0 {
			break
		}
		at := off + i
		end := at + 1 + len(name)
		if end == len(t.data) || strings.ContainsRune(" \t,[]{}", rune(t.data[end])) || lineBreak(t.data, end) > 0 {
			cands = append(cands, at)
		}
		off = end
	}
	for _, c := range cands {
		b := append([]byte(nil), t.data...)
		for _, o := range cands {
			if o != c {
				b[o] = 'x'
			}
		}
		if err := parseAll(b); err != nil && err.Error() == target {
			return c, true
		}
	}
	if len(cands) > 0 {
		return cands[0], true
	}
	return 0, false
}
