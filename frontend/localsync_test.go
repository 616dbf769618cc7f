package frontend_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// writeSame writes each file of files under dir and gives them one fixed
// modification time, so that two directories written with contents of the
// same sizes look unchanged to a transfer that compares sizes and times.
func writeSame(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLocalSourcesPerDirectory builds two directories one after the other
// whose files have the same names, sizes and times but different contents,
// and checks that each build saw its own files: the build context
// (files[].source), the -f YAML and the merged YAML files are each read
// from their own directory, never taken from an earlier build's transfer.
func TestLocalSourcesPerDirectory(t *testing.T) {
	env := testenv.Integration(t)
	const sourceYAML = "files:\n  - path: etc/greeting\n    source: greeting.txt\n    mode: \"0644\"\n"
	contentsYAML := func(s string) string {
		return "files:\n  - path: etc/greeting\n    contents: \"" + s + "\"\n    mode: \"0644\"\n"
	}
	for _, tc := range []struct {
		name string
		// files of directory A and B: each holds what the build must see
		files func(who string) map[string]string
		// the -f files, relative to the directory
		yaml []string
		// the context is the directory itself, else one shared directory
		ownContext bool
	}{
		{
			name: "context",
			files: func(who string) map[string]string {
				return map[string]string{"x.yml": sourceYAML, "greeting.txt": "hello from " + who + "\n"}
			},
			yaml:       []string{"x.yml"},
			ownContext: true,
		},
		{
			name: "dockerfile",
			files: func(who string) map[string]string {
				return map[string]string{"x.yml": contentsYAML("hello from " + who)}
			},
			yaml: []string{"x.yml"},
		},
		{
			name: "merge",
			files: func(who string) map[string]string {
				return map[string]string{"x.yml": "files: []\n", "more.yml": contentsYAML("hello from " + who)}
			},
			yaml: []string{"x.yml", "more.yml"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			shared := filepath.Join(root, "shared-context")
			if err := os.Mkdir(shared, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, who := range []string{"A", "B"} {
				dir := filepath.Join(root, who)
				writeSame(t, dir, tc.files(who))
				o := cli.BuildOptions{File: filepath.Join(dir, tc.yaml[0]), Context: shared, Target: "tar"}
				for _, m := range tc.yaml[1:] {
					o.Merge = append(o.Merge, filepath.Join(dir, m))
				}
				if tc.ownContext {
					o.Context = dir
				}
				out := build(t, env, o)
				got, err := os.ReadFile(filepath.Join(out, "etc/greeting"))
				if err != nil {
					t.Fatal(err)
				}
				if want := "hello from " + who; string(got) != want && string(got) != want+"\n" {
					t.Errorf("build in %s: etc/greeting = %q, want %q", who, got, want)
				}
			}
		})
	}
}
