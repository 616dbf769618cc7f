package frontend_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// TestBuildxMultiPlatform is the user's command: docker buildx build
// --platform linux/amd64,linux/arm64 through the # syntax= line. The local
// exporter must write one directory per platform, each with that
// architecture's kernel and an initrd whose binaries are built for it; no
// binfmt emulator is registered, so nothing foreign ran.
func TestBuildxMultiPlatform(t *testing.T) {
	env := testenv.Integration(t)
	testenv.RequireNoEmulation(t)
	requireBuildx(t)
	out := t.TempDir()
	cmd := exec.Command("docker", "buildx", "build", "--builder", "lkbuild", "--progress", "plain",
		"--platform", "linux/amd64,linux/arm64", "-f", "examples/minimal.yml", "--target", "kernel+initrd",
		"-o", "type=local,dest="+out, ".")
	cmd.Dir = env.Root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker buildx build: %v\n%s", err, b)
	}
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		dir := filepath.Join(out, "linux_"+arch)
		kernel, err := os.ReadFile(filepath.Join(dir, "minimal-kernel"))
		if err != nil {
			t.Fatal(err)
		}
		switch arch {
		case "amd64":
			if len(kernel) < 0x206 || string(kernel[0x202:0x206]) != "HdrS" {
				t.Errorf("linux_amd64/minimal-kernel is not an x86 bzImage")
			}
		case "arm64":
			if len(kernel) < 0x3c || string(kernel[0x38:0x3c]) != "ARM\x64" {
				t.Errorf("linux_arm64/minimal-kernel is not an arm64 Image")
			}
		}
		for path, got := range initrdELFMachines(t, filepath.Join(dir, "minimal-initrd.img"), "init", "bin/busybox",
			"containers/onboot/000-hello/lower/bin/busybox", "usr/bin/runc") {
			if got != machine {
				t.Errorf("linux_%s initrd: %s is built for %v, want %v", arch, path, got, machine)
			}
		}
	}
}

// initrdELFMachines reads the gzip cpio initrd and returns the ELF machine
// of each of paths (all must be present).
func initrdELFMachines(t *testing.T, initrd string, paths ...string) map[string]elf.Machine {
	t.Helper()
	_, data := readInitrd(t, initrd, paths...)
	got := map[string]elf.Machine{}
	for _, p := range paths {
		b, ok := data[p]
		if !ok {
			t.Errorf("%s missing from %s", p, initrd)
			continue
		}
		ef, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: not an ELF file: %v", p, err)
			continue
		}
		got[p] = ef.Machine
	}
	return got
}

// TestBIOSTargetOnArm64 checks the message for a format that does not
// exist on a platform, through the real daemon.
func TestBIOSTargetOnArm64(t *testing.T) {
	env := testenv.Integration(t)
	err := cli.Build(t.Context(), cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Context: env.Root,
		Target: "raw-bios", Platform: "linux/arm64", Output: t.TempDir(), Addr: env.Addr, Helper: env.Helper, Progress: "quiet"})
	if err == nil || !strings.Contains(err.Error(), "does not exist for arm64") {
		t.Fatalf("error %v, want one saying raw-bios does not exist for arm64", err)
	}
}
