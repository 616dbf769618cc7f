package envfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, ".lkbuild"), 0o755)
	os.WriteFile(filepath.Join(root, ".lkbuild", "env"), []byte("# comment\nexport BUILDKIT_HOST='unix:///x.sock'\nexport LKBUILD_FRONTEND=r/f:1\n"), 0o644)
	sub := filepath.Join(root, "a", "b")
	os.MkdirAll(sub, 0o755)
	name, m := FindFile(sub)
	if name != filepath.Join(root, ".lkbuild", "env") {
		t.Errorf("FindFile names %q", name)
	}
	if m["BUILDKIT_HOST"] != "unix:///x.sock" || m["LKBUILD_FRONTEND"] != "r/f:1" {
		t.Errorf("Find = %v", m)
	}
	if len(Find(t.TempDir())) != 0 {
		t.Error("no file must give an empty map")
	}
}
