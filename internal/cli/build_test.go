package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseOutput(t *testing.T) {
	for in, want := range map[string]output{
		"out":                      {typ: "local", dest: "out"},
		"type=local,dest=x":        {typ: "local", dest: "x"},
		"type=tar,dest=rootfs.tar": {typ: "tar", dest: "rootfs.tar"},
		"dest=only":                {typ: "local", dest: "only"},
	} {
		got, err := parseOutput(in)
		if err != nil || got != want {
			t.Errorf("parseOutput(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"type=oci,dest=x", "type=tar", "type=tar,dest=x,compression=gzip"} {
		if _, err := parseOutput(bad); err == nil {
			t.Errorf("parseOutput(%q) accepted", bad)
		}
	}
}

func TestYAMLFiles(t *testing.T) {
	root := t.TempDir()
	dir, names, err := yamlFiles([]string{filepath.Join(root, "a/b/base.yml"), filepath.Join(root, "a/c/extra.yml"), filepath.Join(root, "a/b/d.yml")})
	if err != nil {
		t.Fatal(err)
	}
	// The merged files are named relative to the main YAML's directory.
	if dir != filepath.Join(root, "a") || strings.Join(names, " ") != "b/base.yml ../c/extra.yml d.yml" {
		t.Errorf("dir %s names %v", dir, names)
	}
}

// TestSharedKey: the key of BuildKit's incremental transfer differs for
// every pair of context and YAML directories, and is stable for one pair
// however the paths are written.
func TestSharedKey(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	key := func(ctx, yaml string) string {
		t.Helper()
		k, err := sharedKey(ctx, yaml)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keys := map[string]string{
		"a a": key(a, a), "b b": key(b, b), "a b": key(a, b), "b a": key(b, a),
	}
	seen := map[string]string{}
	for pair, k := range keys {
		if other, ok := seen[k]; ok {
			t.Errorf("directories %s and %s share the key %s", pair, other, k)
		}
		seen[k] = pair
	}
	if key(a, a) != key(filepath.Join(root, "x", "..", "a"), a+"/") {
		t.Error("the same directories written differently get different keys")
	}
	wd, _ := os.Getwd()
	if key(".", ".") != key(wd, wd) {
		t.Error("a relative path is not keyed by its absolute path")
	}
}
