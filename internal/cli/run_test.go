package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/qemu"
)

func TestParseDisks(t *testing.T) {
	got, err := parseDisks([]string{"data.img,1G", "old.qcow2", "b.img,512"})
	if err != nil {
		t.Fatal(err)
	}
	want := []qemu.ExtraDisk{{Path: "data.img", Size: 1 << 30}, {Path: "old.qcow2"}, {Path: "b.img", Size: 512 << 20}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("disk %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{",1G", "x.img,lots", "x.img,0", "x.img,-1G"} {
		if _, err := parseDisks([]string{bad}); err == nil {
			t.Errorf("--disk %q: no error", bad)
		}
	}
}

// TestRunCommandErrors runs `lkbuild run` on paths that are not bootable:
// it fails before starting qemu, saying what it looked for.
func TestRunCommandErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", dir}, "no <name>-kernel with <name>-initrd.img"},
		{[]string{"run", filepath.Join(dir, "minimal")}, "minimal-kernel"},
		{[]string{"run"}, "accepts 1 arg"},
		{[]string{"run", "--disk", "x.img,huge", dir}, "no <name>-kernel"}, // the artifact first
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(tc.args)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestPlatformDir(t *testing.T) {
	out := t.TempDir()
	for _, a := range []string{"amd64", "arm64"} {
		if err := os.Mkdir(filepath.Join(out, "linux_"+a), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := platformDir(out, "arm64"); got != filepath.Join(out, "linux_arm64") {
		t.Errorf("--arch arm64: %s", got)
	}
	if got := platformDir(out, ""); got != filepath.Join(out, "linux_"+runtime.GOARCH) {
		t.Errorf("no --arch: %s", got)
	}
	if got := platformDir(out, "riscv64"); got != out {
		t.Errorf("--arch riscv64: %s", got)
	}
	if got := platformDir(filepath.Join(out, "minimal"), "amd64"); got != filepath.Join(out, "minimal") {
		t.Errorf("a prefix: %s", got)
	}
}
