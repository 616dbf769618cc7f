package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildSaysWhichEnvFile: when .lkbuild/env chooses the daemon (no
// --addr, no $BUILDKIT_HOST), lkbuild build says which file did; a build
// that fails leaves no output directory behind.
func TestBuildSaysWhichEnvFile(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, ".lkbuild"), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, "no-daemon.sock")
	env := "export BUILDKIT_HOST=unix://" + sock + "\nexport LKBUILD_FRONTEND=example.com/lkbuild:x\n"
	if err := os.WriteFile(filepath.Join(root, ".lkbuild", "env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "project")
	yml := filepath.Join(sub, "x.yml")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yml, []byte("files:\n  - {path: a, contents: b}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	t.Setenv("BUILDKIT_HOST", "")
	t.Setenv("LKBUILD_FRONTEND", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		opt  BuildOptions
		want string
	}{
		{BuildOptions{}, "lkbuild: BUILDKIT_HOST=unix://" + sock + ", LKBUILD_FRONTEND=example.com/lkbuild:x from " + filepath.Join(root, ".lkbuild", "env") + "\n"},
		{BuildOptions{Helper: "r/h:1"}, "lkbuild: BUILDKIT_HOST=unix://" + sock + " from " + filepath.Join(root, ".lkbuild", "env") + "\n"},
		{BuildOptions{Addr: "unix://" + sock, Helper: "r/h:1"}, ""},
		{BuildOptions{Progress: "quiet"}, ""},
	} {
		var log bytes.Buffer
		o := c.opt
		o.File, o.Output, o.Log = yml, filepath.Join(sub, "out", "x"), &log
		if o.Progress == "" {
			o.Progress = "plain"
		}
		if err := Build(ctx, o); err == nil {
			t.Fatal("a build without a daemon succeeded")
		}
		if got, _, _ := strings.Cut(log.String(), "WARNING"); !strings.HasPrefix(got, c.want) || (c.want == "" && strings.Contains(got, "from ")) {
			t.Errorf("%+v: log %q, want %q", c.opt, log.String(), c.want)
		}
		if _, err := os.Stat(filepath.Join(sub, "out")); !os.IsNotExist(err) {
			t.Errorf("the failed build left its output directory: %v", err)
		}
	}
}
