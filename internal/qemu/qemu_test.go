package qemu

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	base := "-m 1024 -smp 1 -nographic -no-reboot -serial mon:stdio -netdev user,id=n0 -device virtio-net-pci,netdev=n0"
	ovmf := " -drive if=pflash,format=raw,readonly=on,file=" + OVMFCode + " -drive if=pflash,format=raw,file=/s/efivars.fd"
	aavmf := " -drive if=pflash,format=raw,readonly=on,file=" + AAVMFCode + " -drive if=pflash,format=raw,file=/s/efivars.fd"
	for _, tc := range []struct {
		name string
		a    Artifact
		c    Config
		bin  string
		args string
	}{
		{"kernel+initrd amd64",
			Artifact{Kind: KernelInitrd, Path: "o/m-kernel", Initrd: "o/m-initrd.img", Cmdline: "console=ttyS0 console=tty0", Arch: "amd64"},
			Config{},
			"qemu-system-x86_64",
			"-machine q35 -accel tcg " + base + " -kernel o/m-kernel -initrd o/m-initrd.img -append console=ttyS0 console=tty0 console=ttyS0"},
		{"kernel+initrd arm64, serial console already last",
			Artifact{Kind: KernelInitrd, Path: "k", Initrd: "i", Cmdline: "console=ttyAMA0", Arch: "arm64"},
			Config{Memory: "2G", CPUs: 2},
			"qemu-system-aarch64",
			"-machine virt -accel tcg -cpu cortex-a57 " + strings.Replace(base, "-m 1024 -smp 1", "-m 2G -smp 2", 1) + " -kernel k -initrd i -append console=ttyAMA0"},
		{"kernel+initrd without cmdline",
			Artifact{Kind: KernelInitrd, Path: "k", Initrd: "i", Arch: "amd64"},
			Config{},
			"qemu-system-x86_64",
			"-machine q35 -accel tcg " + base + " -kernel k -initrd i -append console=ttyS0"},
		{"BIOS ISO",
			Artifact{Kind: ISO, Path: "m.iso"},
			Config{Arch: "amd64"},
			"qemu-system-x86_64",
			"-machine q35 -accel tcg " + base + " -drive if=none,id=d0,format=raw,readonly=on,file=m.iso -device ide-cd,drive=d0,bootindex=0"},
		{"EFI ISO amd64",
			Artifact{Kind: ISO, Path: "m-efi.iso", Firmware: EFI},
			Config{Arch: "amd64"},
			"qemu-system-x86_64",
			"-machine q35 -accel tcg " + base + ovmf + " -drive if=none,id=d0,format=raw,readonly=on,file=m-efi.iso -device ide-cd,drive=d0,bootindex=0"},
		{"EFI ISO arm64",
			Artifact{Kind: ISO, Path: "m-efi.iso", Firmware: EFI},
			Config{Arch: "arm64"},
			"qemu-system-aarch64",
			"-machine virt -accel tcg -cpu cortex-a57 " + base + aavmf + " -drive if=none,id=d0,format=raw,readonly=on,file=m-efi.iso -device virtio-scsi-pci,id=scsid0 -device scsi-cd,bus=scsid0.0,drive=d0,bootindex=0"},
		{"EFI qcow2 disk",
			Artifact{Kind: Disk, Path: "m-efi.qcow2", Format: "qcow2", Firmware: EFI},
			Config{Arch: "amd64"},
			"qemu-system-x86_64",
			"-machine q35 -accel tcg " + base + ovmf + " -drive if=none,id=d0,format=qcow2,readonly=on,file=m-efi.qcow2 -device virtio-blk-pci,drive=d0,bootindex=0"},
		{"BIOS disk with published ports and a second disk",
			Artifact{Kind: Disk, Path: "m-bios.img", Format: "raw"},
			Config{Arch: "amd64", Publish: []string{"8080:80", "127.0.0.1:5353:53/udp"}, Disks: []ExtraDisk{{Path: "data.img"}, {Path: "q.qcow2", Format: "qcow2"}}},
			"qemu-system-x86_64",
			"-machine q35 -accel tcg " + strings.Replace(base, "user,id=n0", "user,id=n0,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-:53", 1) +
				" -drive if=none,id=d0,format=raw,readonly=on,file=m-bios.img -device virtio-blk-pci,drive=d0,bootindex=0" +
				" -drive if=none,id=x0,format=raw,file=data.img -device virtio-blk-pci,drive=x0,bootindex=1" +
				" -drive if=none,id=x1,format=qcow2,file=q.qcow2 -device virtio-blk-pci,drive=x1,bootindex=2"},
		{"UKI amd64",
			Artifact{Kind: UKI, Path: "m.efi", Firmware: EFI, Arch: "amd64"},
			Config{},
			"qemu-system-x86_64",
			"-machine q35 -accel tcg " + base + ovmf + " -drive if=none,id=d0,format=raw,readonly=on,file=fat:/s/esp -device virtio-blk-pci,drive=d0,bootindex=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Scratch = "/s"
			bin, args, err := Args(tc.a, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if bin != tc.bin || strings.Join(args, " ") != tc.args {
				t.Errorf("got\n%s %s\nwant\n%s %s", bin, strings.Join(args, " "), tc.bin, tc.args)
			}
		})
	}
}

func TestArgsKVM(t *testing.T) {
	a := Artifact{Kind: ISO, Path: "m.iso"}
	_, args, err := Args(a, Config{Arch: runtime.GOARCH, Accel: "kvm", Scratch: "/s"})
	if runtime.GOARCH != "amd64" {
		// BIOS ISO: amd64 only
		if err == nil {
			t.Errorf("BIOS ISO on %s: no error", runtime.GOARCH)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args[:6], " "); got != "-machine q35 -accel kvm -cpu host" {
		t.Errorf("kvm: %s", got)
	}
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	if _, _, err := Args(Artifact{Kind: ISO, Path: "m.iso", Firmware: EFI}, Config{Arch: other, Accel: "kvm", Scratch: "/s"}); err == nil || !strings.Contains(err.Error(), "tcg") {
		t.Errorf("kvm for %s: err = %v", other, err)
	}
}

func TestArgsErrors(t *testing.T) {
	iso := Artifact{Kind: ISO, Path: "m.iso"}
	for _, tc := range []struct {
		a    Artifact
		c    Config
		want string
	}{
		{iso, Config{Arch: "arm64"}, "BIOS, which exists only on amd64"},
		{iso, Config{Arch: "riscv64"}, `architecture "riscv64"`},
		{iso, Config{Arch: "amd64", Accel: "hvf"}, `accelerator "hvf"`},
		{iso, Config{Arch: "amd64", Memory: "1T"}, `memory "1T"`},
		{iso, Config{Arch: "amd64", Publish: []string{"80"}}, `publish "80"`},
		{iso, Config{Arch: "amd64", Publish: []string{"70000:80"}}, "out of range"},
		{Artifact{Kind: UKI, Path: "m.efi", Firmware: EFI, Arch: "arm64"}, Config{Arch: "amd64"}, "m.efi is for arm64, not amd64"},
	} {
		tc.c.Scratch = "/s"
		if _, _, err := Args(tc.a, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %+v: err = %v, want %q", tc.a, tc.c, err, tc.want)
		}
	}
}

// TestCommandPrepares checks what Command writes into the scratch
// directory for a UKI and that it creates an extra disk of the asked size
// (skipped without qemu and OVMF, which Command checks first).
func TestCommandPrepares(t *testing.T) {
	for _, f := range []string{OVMFCode, OVMFVars} {
		if _, err := os.Stat(f); err != nil {
			t.Skip(err)
		}
	}
	dir := t.TempDir()
	uki := write(t, filepath.Join(dir, "m.efi"), peFile(0x8664, ".linux"))
	a, err := Detect(uki)
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	disk := filepath.Join(dir, "data.img")
	cmd, err := Command(t.Context(), a, Config{Accel: "tcg", Scratch: scratch, Disks: []ExtraDisk{{Path: disk, Size: 1 << 20}}})
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(scratch, "esp", "EFI", "BOOT", "BOOTX64.EFI")); err != nil || len(b) != 0x200 {
		t.Errorf("ESP: %d bytes, %v", len(b), err)
	}
	if _, err := os.Stat(filepath.Join(scratch, "efivars.fd")); err != nil {
		t.Error(err)
	}
	if st, err := os.Stat(disk); err != nil || st.Size() != 1<<20 {
		t.Errorf("disk: %v %v", st, err)
	}
	if !strings.Contains(strings.Join(cmd.Args, " "), "format=raw,file="+disk) {
		t.Errorf("disk not attached: %s", cmd.Args)
	}
	if _, err := Command(t.Context(), a, Config{Accel: "tcg", Scratch: scratch, Disks: []ExtraDisk{{Path: filepath.Join(dir, "new.img")}}}); err == nil ||
		!strings.Contains(err.Error(), "give its size") {
		t.Errorf("a new disk without a size: err = %v", err)
	}
}

func TestMissingNamesPackage(t *testing.T) {
	err := missing("/usr/bin/qemu-system-nothing", "lkbuild-no-such-package")
	if err == nil || !strings.Contains(err.Error(), "Debian package lkbuild-no-such-package") || !strings.Contains(err.Error(), "apt-get install lkbuild-no-such-package") {
		t.Errorf("err = %v", err)
	}
}
