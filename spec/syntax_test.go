package spec

import (
	"fmt"
	"testing"
)

// TestSyntaxPositions: YAML syntax errors are placed at the offending
// character, also on the first line, after multi-byte characters and a
// byte order mark, and in later documents.
func TestSyntaxPositions(t *testing.T) {
	for _, tc := range syntaxCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yml", []byte(tc.yaml))
			if got := fmt.Sprint(firstError(t, err)); len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// syntaxCases are YAML texts with a syntax error, written with LF line
// breaks, and the start of the error each gives.
var syntaxCases = []struct{ name, yaml, want string }{
	{"flow on the first line", "init: [a, b\n", "t.yml:1:7: YAML syntax: did not find expected ',' or ']'"},
	{"second of two quotes", "init: [\"a\", \"b]\n", "t.yml:1:13: YAML syntax: found unexpected end of stream"},
	{"quote after an apostrophe", "init: [don't, \"x]\n", "t.yml:1:15: YAML syntax: found unexpected end of stream"},
	{"column counts characters", "kernel:\n  cmdline: \"é\": x\n", "t.yml:2:15: YAML syntax: mapping values are not allowed in this context"},
	{"byte order mark", "\xef\xbb\xbfkernel:\n  image: a: b\n", "t.yml:2:11: YAML syntax: mapping values are not allowed in this context"},
	{"NUL after a BOM on line 1", "\xef\xbb\xbfa\x00", "t.yml:1:2: YAML syntax: the control character U+0000"},
	{"DEL", "kernel:\n  cmdline: \"a\x7f\"\n", "t.yml:2:14: YAML syntax: the control character U+007F"},
	{"truncated UTF-8", "kernel:\n  cmdline: \xc3", "t.yml:2:12: YAML syntax: invalid UTF-8"},
	{"tab in a block scalar", "files:\n  - path: a\n    contents: |\n      x\n\t  y\n", "t.yml:5:1: YAML syntax: found a tab character"},
	{"character that cannot start a token", "kernel:\n  image: @x\n", "t.yml:2:10: YAML syntax: found character that cannot start any token"},
	{"key in a top-level sequence", "- a\nb: c\n", "t.yml:2:1: YAML syntax: did not find expected '-' indicator"},
	{"error in a second document", "kernel:\n  image: a\n---\n- [\n", "t.yml:5:1: YAML syntax: did not find expected node content"},
	{"alias in a comment first", "a: 1 # not *x\nb: *x\n", "t.yml:2:4: YAML syntax: alias *x names no anchor"},
	{"alias at the end of a line", "a: 1\nb: *x\nc: 2\n", "t.yml:2:4: YAML syntax: alias *x names no anchor"},
	{"tab counts one column", "kernel:\n  cmdline: [a,\tb]: c\n", "t.yml:2:18: YAML syntax: mapping values are not allowed in this context"},
}
