package spec

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yamlBreaks are the line breaks yaml.v3 counts.
var yamlBreaks = []struct{ name, s string }{
	{"LF", "\n"}, {"CR", "\r"}, {"CRLF", "\r\n"}, {"NEL", "\u0085"}, {"LS", "\u2028"}, {"PS", "\u2029"},
}

// TestSyntaxPositionsUnderEveryLineBreak: a syntax error is at the same
// line and column whichever line break the file is written with, as
// yaml.v3 counts a lone CR, CR LF, NEL, LS and PS as one line break each,
// like LF.
func TestSyntaxPositionsUnderEveryLineBreak(t *testing.T) {
	for _, br := range yamlBreaks {
		for _, tc := range syntaxCases {
			t.Run(br.name+"/"+tc.name, func(t *testing.T) {
				_, err := Parse("t.yml", []byte(strings.ReplaceAll(tc.yaml, "\n", br.s)))
				if got := fmt.Sprint(firstError(t, err)); !strings.HasPrefix(got, tc.want) {
					t.Errorf("error\n got %s\nwant %s", got, tc.want)
				}
			})
		}
	}
}

// TestTextCountsAsYAML: the line and column computed from a byte offset
// (where syntax errors are placed) are yaml.v3's own for the node
// starting there, under mixed line breaks, tabs, multi-byte characters
// and byte order marks.
func TestTextCountsAsYAML(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	pads := []string{"", "é", "\t", "日本", "\U0001F600", "\ufeff"}
	for round := 0; round < 200; round++ {
		var b bytes.Buffer
		if round%3 == 0 {
			b.WriteString("\xef\xbb\xbf")
		}
		n := 1 + rnd.Intn(8)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "k%d: [\"%s\",\tv%d]", i, pads[rnd.Intn(len(pads))], i)
			for j := rnd.Intn(3); j >= 0; j-- {
				b.WriteString(yamlBreaks[rnd.Intn(len(yamlBreaks))].s)
			}
		}
		data := b.Bytes()
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		tx := newText(data)
		var walk func(*yaml.Node)
		walk = func(nd *yaml.Node) {
			if nd.Kind == yaml.ScalarNode && (strings.HasPrefix(nd.Value, "k") || strings.HasPrefix(nd.Value, "v")) {
				off := bytes.Index(data, []byte(nd.Value+map[bool]string{true: ":", false: "]"}[nd.Value[0] == 'k']))
				if l, c := tx.lineCol(off); l != nd.Line || c != nd.Column {
					t.Errorf("%q: %s at %d:%d, yaml.v3 says %d:%d", data, nd.Value, l, c, nd.Line, nd.Column)
				}
			}
			for _, c := range nd.Content {
				walk(c)
			}
		}
		walk(&doc)
	}
}

// TestPlainLines: every line break yaml.v3 counts becomes one LF, and
// UTF-16 becomes UTF-8, so a reader splitting UTF-8 at LF sees yaml.v3's
// lines.
func TestPlainLines(t *testing.T) {
	in := "a\rb\r\nc\u0085d\u2028e\u2029f\ng\r\r\n"
	if got, want := string(PlainLines([]byte(in))), "a\nb\nc\nd\ne\nf\ng\n\n"; got != want {
		t.Errorf("PlainLines(%q) = %q, want %q", in, got, want)
	}
	if got := string(PlainLines(utf16Text("a\rb\r\né\U0001F600\n", true))); got != "\ufeffa\nb\né\U0001F600\n" {
		t.Errorf("UTF-16: %q", got)
	}
	lf := []byte("a: é\n\tb\n")
	if got := PlainLines(lf); &got[0] != &lf[0] {
		t.Error("LF-only data was copied")
	}
}

// utf16Text is s in UTF-16 with a byte order mark.
func utf16Text(s string, bigEndian bool) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune("\ufeff" + s)) {
		if bigEndian {
			b = append(b, byte(c>>8), byte(c))
		} else {
			b = append(b, byte(c), byte(c>>8))
		}
	}
	return b
}

// TestSyntaxPositionsInUTF16: yaml.v3 reads UTF-16 with a byte order
// mark and counts its lines and columns in characters, so a syntax error
// is where it is in the same text in UTF-8.
func TestSyntaxPositionsInUTF16(t *testing.T) {
	for _, be := range []bool{false, true} {
		for _, tc := range syntaxCases {
			if !utf8.ValidString(tc.yaml) || strings.HasPrefix(tc.yaml, "\ufeff") {
				continue
			}
			t.Run(fmt.Sprintf("big-endian=%v/%s", be, tc.name), func(t *testing.T) {
				_, err := Parse("t.yml", utf16Text(strings.ReplaceAll(tc.yaml, "\n", "\r\n"), be))
				if got := fmt.Sprint(firstError(t, err)); !strings.HasPrefix(got, tc.want) {
					t.Errorf("error\n got %s\nwant %s", got, tc.want)
				}
			})
		}
	}
	// A text with a character outside the BMP (a surrogate pair: one
	// column) before the error.
	_, err := Parse("t.yml", utf16Text("kernel:\n  cmdline: \"\U0001F600\": x\n", false))
	if got := fmt.Sprint(firstError(t, err)); !strings.HasPrefix(got, "t.yml:2:15: ") {
		t.Errorf("after a surrogate pair: %s", got)
	}
}

// TestOffset: Offset finds the byte where yaml.v3 places each node, under
// every line break, after multi-byte characters, tabs and a byte order
// mark.
func TestOffset(t *testing.T) {
	for _, br := range yamlBreaks {
		data := []byte(strings.ReplaceAll("\ufeffa: 1\n- {é: x, \tk: \U0001F600v}\n", "\n", br.s))
		for _, c := range []struct {
			line, col int
			at        string
		}{{1, 1, "a: 1"}, {1, 4, "1"}, {1, 5, ""}, {2, 1, "- {"}, {2, 4, "é"}, {2, 11, "k:"}, {2, 14, "\U0001F600v"}, {2, 15, "v}"}} {
			off, ok := Offset(data, c.line, c.col)
			if !ok || !bytes.HasPrefix(data[off:], []byte(c.at)) || (c.at == "" && lineBreak(data, off) == 0) {
				t.Errorf("%s: Offset(%d, %d) = %d, %v: want the place of %q", br.name, c.line, c.col, off, ok, c.at)
			}
		}
		for _, c := range [][2]int{{0, 1}, {1, 0}, {1, 6}, {4, 1}} {
			if _, ok := Offset(data, c[0], c[1]); ok {
				t.Errorf("%s: Offset(%d, %d) found a place outside the text", br.name, c[0], c[1])
			}
		}
	}
}
