package boottest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// TestBootMultiArch builds examples/minimal.yml for linux/amd64 and
// linux/arm64 in one build, on a machine with no binfmt emulator
// registered (asserted first: any foreign binary run during the build
// would have failed it), and boots each result in its own qemu (q35 and
// virt, TCG) to the service marker.
func TestBootMultiArch(t *testing.T) {
	env := testenv.Integration(t)
	testenv.RequireNoEmulation(t)
	requireQEMUArch(t, "amd64", "arm64")
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := cli.Build(ctx, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Context: env.Root,
		Target: "kernel+initrd", Platform: "linux/amd64,linux/arm64", Output: out, Addr: env.Addr, Helper: env.Helper,
		Progress: "quiet"}); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(out, "linux_"+arch)
			cmdline, err := os.ReadFile(filepath.Join(dir, "minimal-cmdline"))
			if err != nil {
				t.Fatal(err)
			}
			vmctx, stop := context.WithTimeout(context.Background(), 8*time.Minute)
			defer stop()
			var log bytes.Buffer
			start := time.Now()
			con, err := QEMUKernelArch(vmctx, arch, filepath.Join(dir, "minimal-kernel"), filepath.Join(dir, "minimal-initrd.img"), string(cmdline), &log)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(con.Close)
			if err := con.WaitFor(7*time.Minute, minimalMarkers...); err != nil {
				t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
			}
			t.Logf("linux/%s booted to the service marker in %s", arch, time.Since(start).Round(time.Second))
		})
	}
}

// TestBootArm64EFI builds the EFI formats raw-efi (systemd-boot and a
// unified kernel image with arm64's stub, BOOTAA64.EFI, on a GPT disk) and
// iso-efi-initrd (the UKI in an El Torito image, on a virtio-scsi CD) for
// linux/arm64 and boots each with AAVMF on the virt machine.
func TestBootArm64EFI(t *testing.T) {
	env := testenv.Integration(t)
	testenv.RequireNoEmulation(t)
	requireQEMUArch(t, "arm64")
	for _, tc := range []struct {
		target, file string
		cdrom        bool
	}{
		{"raw-efi", "minimal-serial-efi.img", false},
		{"iso-efi-initrd", "minimal-serial-efi-initrd.iso", true},
	} {
		t.Run(tc.target, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			if err := cli.Build(ctx, cli.BuildOptions{File: filepath.Join(env.Root, formatsYAML), Context: env.Root,
				Target: tc.target, Platform: "linux/arm64", Output: out, Addr: env.Addr, Helper: env.Helper, Progress: "quiet"}); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			start := time.Now()
			con, err := QEMUMachineArch(ctx, "arm64", EFI, t.TempDir(), &log, Drive{Path: filepath.Join(out, tc.file), Format: "raw", CDROM: tc.cdrom})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(con.Close)
			if err := con.WaitFor(8*time.Minute, minimalMarkers...); err != nil {
				t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
			}
			t.Logf("arm64 %s booted to the service marker in %s", tc.target, time.Since(start).Round(time.Second))
		})
	}
}

// requireQEMUArch skips (fails under make test) when qemu or the EFI
// firmware for an architecture is missing.
func requireQEMUArch(t *testing.T, arches ...string) {
	t.Helper()
	for _, arch := range arches {
		m, err := machineFor(arch)
		if err != nil {
			t.Fatal(err)
		}
		missing := ""
		if _, err := exec.LookPath(m.qemu); err != nil {
			missing = m.qemu
		} else if _, err := os.Stat(m.efiCode); err != nil {
			missing = m.efiCode
		}
		if missing != "" {
			if testenv.Required() {
				t.Fatalf("%s missing (make env installs qemu-system-x86, qemu-system-arm, ovmf and qemu-efi-aarch64)", missing)
			}
			t.Skipf("%s missing", missing)
		}
	}
}
