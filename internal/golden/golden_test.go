package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, c := range []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", "(same text)"},
		{"a\nb\nc", "a\nx\nc", "line 2:\n  want b\n  got  x\n+ x\n- b"},
		{"a\nb", "a", "line 2:\n  want b\n  got  (end)\n- b"},
		{"a\nb", "b\na", "line 1:\n  want a\n  got  b"},
		{"}\n}", "}", "line 2:\n  want }\n  got  (end)\n- }"},
	} {
		if got := Diff(c.want, c.got); got != c.diff {
			t.Errorf("Diff(%q, %q) =\n%s\nwant\n%s", c.want, c.got, got, c.diff)
		}
	}
	long := ""
	for i := 0; i < 50; i++ {
		long += string(rune('a'+i%26)) + strings.Repeat("!", i) + "\n"
	}
	if d := Diff("", long); !strings.HasSuffix(d, "(10 more)") {
		t.Errorf("a long diff is not cut: %s", d)
	}
}

// TestCheck: equal output passes, a difference or a missing file is an
// error that says how to update.
func TestCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(file, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file, got string
		fails     bool
	}{
		{file, "a\nb\n", false},
		{file, "a\nc\n", true},
		{file + ".none", "a", true},
	} {
		rec := &recorder{TB: t}
		Check(rec, c.file, []byte(c.got), "TestX")
		if rec.failed != c.fails || c.fails && !strings.Contains(rec.msg, "go test -run 'TestX' -update") {
			t.Errorf("Check(%s, %q): failed %v %q, want failed %v", c.file, c.got, rec.failed, rec.msg, c.fails)
		}
	}
}

// recorder records a test's errors instead of failing it.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

func (r *recorder) Helper() {}
