package boottest

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/qemu"
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
			vmctx, stop := context.WithTimeout(context.Background(), 8*time.Minute)
			defer stop()
			var log bytes.Buffer
			start := time.Now()
			// the output directory: `lkbuild run --arch` picks linux_<arch>
			con, err := Run(vmctx, cli.RunOptions{Path: out, Arch: arch}, &log)
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
	}{
		{"raw-efi", "minimal-serial-efi.img"},
		{"iso-efi-initrd", "minimal-serial-efi-initrd.iso"},
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
			con, err := Run(ctx, cli.RunOptions{Path: filepath.Join(out, tc.file), Arch: "arm64"}, &log)
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
		// what an EFI ISO needs: qemu-system and the EFI firmware
		err := qemu.Check(qemu.Artifact{Kind: qemu.ISO, Path: "x.iso", Firmware: qemu.EFI}, qemu.Config{Arch: arch, Accel: "tcg", Scratch: "unused"})
		if err != nil {
			if testenv.Required() {
				t.Fatalf("%v (make env installs it)", err)
			}
			t.Skip(err)
		}
	}
}
