// Package qemu boots lkbuild's artifacts in qemu: it recognises what an
// artifact is (Detect), builds the qemu command line for it (Args) and
// starts the machine (Command), checking first that qemu and the EFI
// firmware are installed. `lkbuild run` and the boot tests use it. It
// imports nothing of lkbuild's.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config is how to run the machine.
type Config struct {
	// Arch is the machine's architecture: amd64 (q35) or arm64 (virt);
	// default the artifact's (Artifact.Arch), else the host's.
	Arch string
	// Accel is kvm or tcg (software emulation); default tcg.
	Accel string
	// Memory is qemu's -m: MiB, or with an M or G suffix; default 1024.
	Memory string
	// CPUs is the number of processors; default 1.
	CPUs int
	// Publish forwards host ports to the guest: [hostip:]hostport:guestport[/tcp|/udp].
	Publish []string
	// Disks are more disks, attached writable after the artifact.
	Disks []ExtraDisk
	// Scratch is a directory for the firmware's variable store and a
	// UKI's FAT directory; Command fills it.
	Scratch string
}

// ExtraDisk is a disk attached besides the artifact; Command creates it,
// sparse and raw, with Size bytes when it does not exist.
type ExtraDisk struct {
	Path string
	Size int64
	// Format is qemu's driver (raw, qcow2); Command reads it from an
	// existing file's magic number when it is empty.
	Format string
}

// machine is how qemu emulates one architecture.
type machine struct {
	qemu    string // the qemu-system binary
	pkg     string // the Debian package holding it
	machine string // -machine
	tcgCPU  string // -cpu under TCG ("" for qemu's default)
	console string // the serial console's device name in Linux
	// firmware code and variable-store templates for EFI, and their
	// Debian package
	efiCode, efiVars, efiPkg string
	cdrom                    func(id string, index int) []string
}

// EFI firmware code and variable-store templates: OVMF for amd64 (Debian's
// ovmf package), AAVMF for arm64 (qemu-efi-aarch64).
const (
	OVMFCode  = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars  = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	AAVMFCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

var machines = map[string]machine{
	"amd64": {
		qemu: "qemu-system-x86_64", pkg: "qemu-system-x86", machine: "q35", console: "ttyS0",
		efiCode: OVMFCode, efiVars: OVMFVars, efiPkg: "ovmf",
		cdrom: func(id string, i int) []string {
			return []string{"-device", fmt.Sprintf("ide-cd,drive=%s,bootindex=%d", id, i)}
		},
	},
	"arm64": {
		qemu: "qemu-system-aarch64", pkg: "qemu-system-arm", machine: "virt", tcgCPU: "cortex-a57", console: "ttyAMA0",
		efiCode: AAVMFCode, efiVars: AAVMFVars, efiPkg: "qemu-efi-aarch64",
		cdrom: func(id string, i int) []string {
			return []string{"-device", "virtio-scsi-pci,id=scsi" + id, "-device", fmt.Sprintf("scsi-cd,bus=scsi%s.0,drive=%s,bootindex=%d", id, id, i)}
		},
	},
}

func machineFor(arch string) (machine, error) {
	m, ok := machines[arch]
	if !ok {
		return machine{}, fmt.Errorf("no qemu machine for architecture %q (amd64, arm64)", arch)
	}
	return m, nil
}

// resolve fills c's defaults for a.
func (c Config) resolve(a Artifact) (Config, error) {
	if c.Arch == "" {
		c.Arch = a.Arch
		if c.Arch == "" {
			c.Arch = runtime.GOARCH
		}
	}
	if a.Arch != "" && a.Arch != c.Arch {
		return c, fmt.Errorf("%s is for %s, not %s", a.Path, a.Arch, c.Arch)
	}
	switch c.Accel {
	case "":
		c.Accel = "tcg"
	case "tcg", "kvm":
	default:
		return c, fmt.Errorf("accelerator %q: want kvm or tcg", c.Accel)
	}
	if c.Accel == "kvm" && c.Arch != runtime.GOARCH {
		return c, fmt.Errorf("kvm runs only the host's architecture (%s), not %s: use tcg", runtime.GOARCH, c.Arch)
	}
	if c.Memory == "" {
		c.Memory = "1024"
	}
	if !memRE.MatchString(c.Memory) {
		return c, fmt.Errorf("memory %q: want MiB, or a number with M or G", c.Memory)
	}
	if c.CPUs == 0 {
		c.CPUs = 1
	}
	if c.CPUs < 0 {
		return c, fmt.Errorf("%d CPUs", c.CPUs)
	}
	if c.Scratch == "" {
		return c, errors.New("no scratch directory")
	}
	return c, nil
}

var memRE = regexp.MustCompile(`^[1-9][0-9]*[MG]?$`)

// Args returns the qemu binary and arguments that boot a with c: the
// serial console on stdio (-nographic -serial mon:stdio), no reboot (a
// reboot or poweroff ends qemu), user networking with c.Publish, the
// artifact first in the boot order, then c.Disks. It only reads c.Scratch's
// name; Command fills it.
func Args(a Artifact, c Config) (string, []string, error) {
	c, err := c.resolve(a)
	if err != nil {
		return "", nil, err
	}
	m, err := machineFor(c.Arch)
	if err != nil {
		return "", nil, err
	}
	args := []string{"-machine", m.machine, "-accel", c.Accel}
	switch {
	case c.Accel == "kvm":
		args = append(args, "-cpu", "host")
	case m.tcgCPU != "":
		args = append(args, "-cpu", m.tcgCPU)
	}
	args = append(args, "-m", c.Memory, "-smp", strconv.Itoa(c.CPUs),
		"-nographic", "-no-reboot", "-serial", "mon:stdio")
	nic := "user,id=n0"
	for _, p := range c.Publish {
		fwd, err := hostfwd(p)
		if err != nil {
			return "", nil, err
		}
		nic += ",hostfwd=" + fwd
	}
	args = append(args, "-netdev", nic, "-device", "virtio-net-pci,netdev=n0")

	fw := a.Firmware
	if a.Kind == KernelInitrd {
		fw = BIOS // qemu loads the kernel itself
	}
	if fw == EFI {
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+m.efiCode,
			"-drive", "if=pflash,format=raw,file="+filepath.Join(c.Scratch, "efivars.fd"))
	} else if c.Arch != "amd64" && a.Kind != KernelInitrd {
		return "", nil, fmt.Errorf("%s boots with BIOS, which exists only on amd64", a.Path)
	}

	disk := func(id, format, file string, readonly bool, index int) []string {
		ro := ""
		if readonly {
			ro = ",readonly=on"
		}
		return []string{"-drive", fmt.Sprintf("if=none,id=%s,format=%s%s,file=%s", id, format, ro, file),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=%s,bootindex=%d", id, index)}
	}
	switch a.Kind {
	case KernelInitrd:
		cmdline := a.Cmdline
		if lastConsole(cmdline) != m.console {
			// last, so it is /dev/console: the containers' output
			// comes to the terminal
			cmdline += " console=" + m.console
		}
		args = append(args, "-kernel", a.Path, "-initrd", a.Initrd, "-append", strings.TrimSpace(cmdline))
	case ISO:
		args = append(args, "-drive", "if=none,id=d0,format=raw,readonly=on,file="+a.Path)
		args = append(args, m.cdrom("d0", 0)...)
	case Disk:
		args = append(args, disk("d0", a.Format, a.Path, true, 0)...)
	case UKI:
		args = append(args, disk("d0", "raw", "fat:"+filepath.Join(c.Scratch, "esp"), true, 0)...)
	default:
		return "", nil, fmt.Errorf("%s: unknown kind %v", a.Path, a.Kind)
	}
	for i, d := range c.Disks {
		format := d.Format
		if format == "" {
			format = "raw"
		}
		args = append(args, disk(fmt.Sprintf("x%d", i), format, d.Path, false, i+1)...)
	}
	return m.qemu, args, nil
}

// lastConsole returns the device of the last console= on cmdline, which
// Linux makes /dev/console.
func lastConsole(cmdline string) string {
	dev := ""
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "console="); ok {
			dev, _, _ = strings.Cut(v, ",")
		}
	}
	return dev
}

var publishRE = regexp.MustCompile(`^(?:([0-9.]+):)?([0-9]+):([0-9]+)(?:/(tcp|udp))?$`)

// hostfwd turns [hostip:]hostport:guestport[/proto] into qemu's
// hostfwd=proto:hostip:hostport-:guestport.
func hostfwd(p string) (string, error) {
	m := publishRE.FindStringSubmatch(p)
	if m == nil {
		return "", fmt.Errorf("publish %q: want [hostip:]hostport:guestport[/tcp|/udp]", p)
	}
	for _, port := range m[2:4] {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("publish %q: port %s out of range", p, port)
		}
	}
	proto := m[4]
	if proto == "" {
		proto = "tcp"
	}
	return fmt.Sprintf("%s:%s:%s-:%s", proto, m[1], m[2], m[3]), nil
}

// Check reports what is missing to boot a with c: the qemu binary or the
// EFI firmware, naming the Debian package that provides it.
func Check(a Artifact, c Config) error {
	c, err := c.resolve(a)
	if err != nil {
		return err
	}
	m, err := machineFor(c.Arch)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath(m.qemu); err != nil {
		return missing(m.qemu, m.pkg)
	}
	if a.Firmware == EFI && a.Kind != KernelInitrd {
		for _, f := range []string{m.efiCode, m.efiVars} {
			if _, err := os.Stat(f); err != nil {
				return missing(f, m.efiPkg)
			}
		}
	}
	if c.Accel == "kvm" {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("kvm: %w (use --accel tcg)", err)
		}
		f.Close()
	}
	return nil
}

// missing says what is missing and which Debian package has it, and
// whether dpkg knows the package as installed.
func missing(what, pkg string) error {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	switch {
	case err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), " installed"):
		where := "is missing"
		if !filepath.IsAbs(what) {
			where = "is not on PATH"
		}
		return fmt.Errorf("%s not found: it comes with the Debian package %s, which is installed, but %s %s", what, pkg, what, where)
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("%s not found: it comes with the Debian package %s (apt-get install %s)", what, pkg, pkg)
	}
	return fmt.Errorf("%s not found: it comes with the Debian package %s, which is not installed (apt-get install %s)", what, pkg, pkg)
}

// KVMAvailable reports whether /dev/kvm can be opened for the host's
// architecture.
func KVMAvailable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// Command checks that qemu and the firmware are there (Check), prepares
// c.Scratch (the firmware's writable variable store; a UKI's FAT directory
// EFI/BOOT/BOOTX64.EFI or BOOTAA64.EFI), creates missing c.Disks and
// returns the qemu command; ctx ends it (SIGTERM, SIGKILL 10 seconds
// later).
func Command(ctx context.Context, a Artifact, c Config) (*exec.Cmd, error) {
	if err := Check(a, c); err != nil {
		return nil, err
	}
	rc, err := c.resolve(a)
	if err != nil {
		return nil, err
	}
	m, _ := machineFor(rc.Arch)
	if a.Firmware == EFI && a.Kind != KernelInitrd {
		if err := copyFile(m.efiVars, filepath.Join(c.Scratch, "efivars.fd")); err != nil {
			return nil, fmt.Errorf("EFI variable store: %w", err)
		}
	}
	if a.Kind == UKI {
		name := map[string]string{"amd64": "BOOTX64.EFI", "arm64": "BOOTAA64.EFI"}[rc.Arch]
		dir := filepath.Join(c.Scratch, "esp", "EFI", "BOOT")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(a.Path, filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("FAT directory for the unified kernel image: %w", err)
		}
	}
	c.Disks = append([]ExtraDisk(nil), c.Disks...)
	for i, d := range c.Disks {
		if err := createDisk(d); err != nil {
			return nil, err
		}
		if d.Format == "" {
			c.Disks[i].Format = diskFormat(d.Path)
		}
	}
	bin, args, err := Args(a, c)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	// SIGTERM first: qemu then gives a terminal back out of raw mode
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

func createDisk(d ExtraDisk) error {
	f, err := os.OpenFile(d.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if d.Size <= 0 {
		f.Close()
		os.Remove(d.Path)
		return fmt.Errorf("disk %s does not exist: give its size (%s,1G)", d.Path, d.Path)
	}
	if err := f.Truncate(d.Size); err != nil {
		f.Close()
		return fmt.Errorf("disk %s: %w", d.Path, err)
	}
	return f.Close()
}

// diskFormat is qcow2 for a file with qcow2's magic number, else raw.
func diskFormat(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "raw"
	}
	defer f.Close()
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, 0); err == nil && string(b) == "QFI\xfb" {
		return "qcow2"
	}
	return "raw"
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
