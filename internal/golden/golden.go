// Package golden compares the output of tests with golden files, the
// reviewed expected output kept under testdata: `go test -update`
// rewrites them instead, so that a change of output shows in review as a
// change of the golden files. Only tests import it; it registers the
// -update flag of their test binary.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files with the output of the tests")

// Update reports whether the test runs with -update: golden files (and
// other expected output kept in files) are rewritten, not compared.
func Update() bool { return *update }

// Check compares got with the golden file file. With -update it writes got
// to the file (creating its directory) instead. A difference is a test
// error that says how to update (run names the go test -run pattern).
func Check(t testing.TB, file string, got []byte, run string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("%v (go test -run '%s' -update writes it)", err, run)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (review, then go test -run '%s' -update):\n%s", file, run, Diff(string(want), string(got)))
	}
}

// maxDiffLines bounds the lines Diff lists.
const maxDiffLines = 40

// Diff describes how got differs from want: the first line that differs,
// with its number, then the lines only in want (-) and only in got (+),
// sorted, at most maxDiffLines of them.
func Diff(want, got string) string {
	if want == got {
		return "(same text)"
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	line := func(l []string, i int) string {
		if i < len(l) {
			return l[i]
		}
		return "(end)"
	}
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	out := []string{fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, line(w, i), line(g, i))}
	count := func(l []string) map[string]int {
		m := map[string]int{}
		for _, s := range l {
			m[s]++
		}
		return m
	}
	cw, cg := count(w), count(g)
	var only []string
	for s, n := range cw {
		if n > cg[s] {
			only = append(only, "- "+s)
		}
	}
	for s, n := range cg {
		if n > cw[s] {
			only = append(only, "+ "+s)
		}
	}
	sort.Strings(only)
	if len(only) > maxDiffLines {
		only = append(only[:maxDiffLines], fmt.Sprintf("(%d more)", len(only)-maxDiffLines))
	}
	return strings.Join(append(out, only...), "\n")
}
