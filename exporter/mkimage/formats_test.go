package mkimage

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/formats"
)

// TestWritersMatchTable: every target of package formats that is not the
// tree itself has a writer, and every writer a target.
func TestWritersMatchTable(t *testing.T) {
	var targets []string
	for _, tg := range formats.All() {
		if !tg.Tree {
			targets = append(targets, tg.Name)
		}
	}
	targets = append(targets, formats.SegmentFormats...)
	sort.Strings(targets)
	if got, want := strings.Join(FormatNames(), ","), strings.Join(targets, ","); got != want {
		t.Errorf("writers for %s; the table's targets written by mkimage are %s", got, want)
	}
}

// TestWritersWriteTableArtifacts runs every writer over a tree with a
// kernel and a command line: each writes exactly the artifacts the table
// names for its target, after the base name.
func TestWritersWriteTableArtifacts(t *testing.T) {
	boot := fakeBootFiles(t)
	in := bootTree(t, "console=ttyS0")
	for _, tg := range formats.All() {
		if tg.Tree {
			continue
		}
		out := t.TempDir()
		if err := Run(context.Background(), Options{Format: tg.Name, Name: "sys", Input: in, Output: out, BootFiles: boot}); err != nil {
			t.Errorf("%s: %v", tg.Name, err)
			continue
		}
		var want []string
		for _, a := range tg.Artifacts {
			want = append(want, "sys"+a)
		}
		sort.Strings(want)
		assertOnly(t, out, want...)
	}
}

// TestArchFromTable: a writer refuses an architecture the table says its
// target does not exist for, before writing anything.
func TestArchFromTable(t *testing.T) {
	boot := fakeBootFiles(t)
	in := bootTree(t, "")
	for _, tg := range formats.All() {
		if tg.Tree || len(tg.Arches) == 0 {
			continue
		}
		out := t.TempDir()
		err := Run(context.Background(), Options{Format: tg.Name, Name: "sys", Input: in, Output: out, BootFiles: boot, Arch: "arm64"})
		if err == nil || !strings.Contains(err.Error(), "target "+tg.Name+" does not exist for arm64") {
			t.Errorf("%s on arm64: error %v", tg.Name, err)
		}
		assertOnly(t, out)
	}
}
