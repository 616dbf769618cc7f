package spec

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Lines and columns as gopkg.in/yaml.v3 counts them, for every position
// the package computes from bytes (syntax.go) rather than takes from a
// node: a line break is CR LF (one break), CR, LF, NEL (U+0085), LS
// (U+2028) or PS (U+2029); a column counts characters from 1, a tab being
// one; a UTF-8 byte order mark at the start of the file is not counted
// (one elsewhere is a character).

// lineBreak is the length in bytes of the line break starting at data[i],
// or 0 when none does.
func lineBreak(data []byte, i int) int {
	switch c := data[i]; {
	case c == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case c == '\r' || c == '\n':
		return 1
	case c == 0xc2 && i+1 < len(data) && data[i+1] == 0x85:
		return 2
	case c == 0xe2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xa8 || data[i+2] == 0xa9):
		return 3
	}
	return 0
}

// PlainLines returns data as UTF-8 (utf8Text) with each line break that
// yaml.v3 counts written as one LF, so that a tool reading UTF-8 and
// counting LF only (BuildKit, when it prints the YAML lines around an
// error or warning) numbers the lines as the positions of this package
// do. data is returned as is when it is UTF-8 with LF breaks only.
func PlainLines(data []byte) []byte {
	data = utf8Text(data)
	var out []byte
	for i := 0; i < len(data); {
		n := lineBreak(data, i)
		if n == 0 || (n == 1 && data[i] == '\n') {
			if out != nil {
				out = append(out, data[i])
			}
			i++
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(data)), data[:i]...)
		}
		out = append(out, '\n')
		i += n
	}
	if out == nil {
		return data
	}
	return out
}

// utf8Text returns data as UTF-8 when it is UTF-16 with a byte order
// mark, which yaml.v3 reads too (its positions count the characters,
// whatever the encoding): the UTF-8 text, starting with a UTF-8 byte order
// mark, has the same lines and columns. Other data, and UTF-16 that does
// not decode (an odd length, a lone surrogate), is returned as is.
func utf8Text(data []byte) []byte {
	var be bool
	switch {
	case len(data) >= 2 && data[0] == 0xfe && data[1] == 0xff:
		be = true
	case len(data) >= 2 && data[0] == 0xff && data[1] == 0xfe:
	default:
		return data
	}
	if len(data)%2 != 0 {
		return data
	}
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); i += 2 {
		r := rune(data[i]) | rune(data[i+1])<<8
		if be {
			r = rune(data[i])<<8 | rune(data[i+1])
		}
		if utf16.IsSurrogate(r) {
			if r >= 0xdc00 || i+3 >= len(data) {
				return data
			}
			r2 := rune(data[i+2]) | rune(data[i+3])<<8
			if be {
				r2 = rune(data[i+2])<<8 | rune(data[i+3])
			}
			if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
				return data
			}
			i += 2
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

// Offset returns the byte offset in data (UTF-8) of the character at
// line:col, as yaml.v3 counts lines and columns (and as every position of
// this package is given), for tools that edit the YAML at a node's
// position. col may be one past the last character of the line; ok is
// false when there is no such place.
func Offset(data []byte, line, col int) (off int, ok bool) {
	t := newText(data)
	if line < 1 || line > len(t.starts) || col < 1 {
		return 0, false
	}
	off, end := t.starts[line-1], t.ends[line-1]
	if line == 1 {
		off = t.bom
	}
	for c := 1; c < col; c++ {
		if off >= end {
			return 0, false
		}
		_, size := utf8.DecodeRune(data[off:end])
		off += size
	}
	return off, true
}
