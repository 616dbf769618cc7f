package cli

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/testenv"
)

// TestRunPowersOff builds hack/boottest/testdata/features.yml (whose
// poweroff service shuts the machine down) as kernel+initrd and boots it
// with the `lkbuild run` command (TCG): the console reaches the terminal
// (the command's stdout) and the command ends with the guest's poweroff,
// without an error. A timeout shorter than the boot kills the machine and
// fails.
func TestRunPowersOff(t *testing.T) {
	env := testenv.Integration(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if testenv.Required() {
			t.Fatal("qemu-system-x86_64 not installed (make env)")
		}
		t.Skip("qemu-system-x86_64 not installed")
	}
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := Build(ctx, BuildOptions{File: filepath.Join(env.Root, "hack/boottest/testdata/features.yml"), Context: env.Root,
		Target: "kernel+initrd", Output: out, Addr: env.Addr, Helper: env.Helper, Progress: "quiet"}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, time.Duration, error) {
		root := newRoot()
		var console, stderr bytes.Buffer
		root.SetIn(strings.NewReader(""))
		root.SetOut(&console)
		root.SetErr(&stderr)
		root.SetArgs(append([]string{"run", "--accel", "tcg"}, args...))
		start := time.Now()
		err := root.ExecuteContext(ctx)
		t.Logf("lkbuild run %s: %v after %s; stderr:\n%s", strings.Join(args, " "), err, time.Since(start).Round(time.Second), stderr.String())
		return console.String(), time.Since(start), err
	}

	console, took, err := run("--timeout", "5s", filepath.Join(out, "features"))
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("--timeout 5s: err = %v, want a timeout\n%s", err, console)
	}
	if took > 30*time.Second {
		t.Errorf("--timeout 5s took %s", took)
	}

	console, took, err = run("--timeout", "8m", out)
	if err != nil {
		t.Fatalf("err = %v, want nil (the guest powers off)\n--- console ---\n%s", err, console)
	}
	for _, m := range []string{"lkbuild-features: powering off", "lkinit: shutdown poweroff", "lkbuild-features: onshutdown goodbye ran"} {
		if !strings.Contains(console, m) {
			t.Errorf("no %q on the console", m)
		}
	}
	if took >= 8*time.Minute {
		t.Errorf("took %s: ended by the timeout, not the poweroff", took)
	}
}
