package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/golden"
)

// TestMetadataLinuxKitBytes loads every input of testdata/metadata/inputs.txt
// and compares Metadata's yaml and json with the bytes LinuxKit's own
// marshalling wrote for the same input (testdata/metadata/golden; see the
// README there). The golden files are LinuxKit's output, not ours: there
// is no -update for them.
//
// The inputs are parsed and merged without Load's check of the whole
// configuration: everything.yml writes ids as quoted numbers ("100") to
// test their quoting, which no container is named after, so a build (of
// LinuxKit as of lkbuild) refuses it.
func TestMetadataLinuxKitBytes(t *testing.T) {
	list, err := os.ReadFile("testdata/metadata/inputs.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(list), "\n") {
		files := strings.Fields(line)
		if len(files) == 0 || strings.HasPrefix(files[0], "#") {
			continue
		}
		key := strings.ReplaceAll(strings.Join(files, "+"), "/", "__")
		var srcs []Source
		for _, f := range files {
			dt, err := os.ReadFile(filepath.Join("testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			srcs = append(srcs, Source{Filename: f, Data: dt})
		}
		cfg, err := parseAndMerge(srcs)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		for _, format := range []string{"yaml", "json"} {
			want, err := os.ReadFile(filepath.Join("testdata/metadata/golden", key+"."+format))
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			got, err := Metadata(cfg, format)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s.%s differs from LinuxKit's bytes:\n%s", key, format, golden.Diff(string(want), string(got)))
			}
			n++
		}
	}
	if n < 100 {
		t.Errorf("only %d comparisons", n)
	}
}

// TestMetadataMirrorsOverrides: the metadata's image fields are the
// model's, in the same order with the same tags, so a field added to
// Overrides cannot be left out of the metadata unnoticed.
func TestMetadataMirrorsOverrides(t *testing.T) {
	o, m := reflect.TypeOf(Overrides{}), reflect.TypeOf(mdImageConfig{})
	if o.NumField() != m.NumField() {
		t.Fatalf("Overrides has %d fields, mdImageConfig %d", o.NumField(), m.NumField())
	}
	for i := 0; i < o.NumField(); i++ {
		of, mf := o.Field(i), m.Field(i)
		if of.Name != mf.Name || of.Tag != mf.Tag {
			t.Errorf("field %d: %s %q vs %s %q", i, of.Name, of.Tag, mf.Name, mf.Tag)
		}
	}
}
