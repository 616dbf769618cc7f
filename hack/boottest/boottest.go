// Package boottest boots lkbuild's artifacts in qemu (software emulation,
// TCG) and watches the serial console for the markers the stand-in init and
// the example containers print.
package boottest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Console is the serial output of a booted machine.
type Console struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
	done  chan struct{}
	err   error
	proc  *os.Process
}

// QEMUKernel boots kernel+initrd with qemu-system-x86_64 and returns its
// console; ctx bounds the machine's life.
func QEMUKernel(ctx context.Context, kernel, initrd, cmdline string, log io.Writer) (*Console, error) {
	return QEMUKernelArch(ctx, "amd64", kernel, initrd, cmdline, log)
}

// QEMUKernelArch boots kernel+initrd of architecture arch (amd64: q35,
// arm64: the virt machine), with the machine's serial console appended to
// cmdline.
func QEMUKernelArch(ctx context.Context, arch, kernel, initrd, cmdline string, log io.Writer) (*Console, error) {
	m, err := machineFor(arch)
	if err != nil {
		return nil, err
	}
	args := append(m.args(),
		"-kernel", kernel, "-initrd", initrd,
		"-append", strings.TrimSpace(cmdline+" console="+m.console+" panic=-1"),
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
	)
	return start(ctx, exec.CommandContext(ctx, m.qemu, args...), log)
}

// machine is how qemu emulates one architecture (TCG, no acceleration).
type machine struct {
	qemu    string   // the qemu-system binary
	base    []string // machine and CPU
	console string   // the serial console's device name in Linux
	// firmware code and variable-store templates for EFI
	efiCode, efiVars string
	cdrom            func(id string, index int) []string
}

func machineFor(arch string) (machine, error) {
	switch arch {
	case "amd64":
		return machine{
			qemu: "qemu-system-x86_64", base: []string{"-machine", "q35"}, console: "ttyS0",
			efiCode: OVMFCode, efiVars: OVMFVars,
			cdrom: func(id string, i int) []string {
				return []string{"-device", fmt.Sprintf("ide-cd,drive=%s,bootindex=%d", id, i)}
			},
		}, nil
	case "arm64":
		return machine{
			qemu: "qemu-system-aarch64", base: []string{"-machine", "virt", "-cpu", "cortex-a57"}, console: "ttyAMA0",
			efiCode: AAVMFCode, efiVars: AAVMFVars,
			cdrom: func(id string, i int) []string {
				return []string{"-device", "virtio-scsi-pci,id=scsi" + id, "-device", fmt.Sprintf("scsi-cd,bus=scsi%s.0,drive=%s,bootindex=%d", id, id, i)}
			},
		}, nil
	}
	return machine{}, fmt.Errorf("no qemu machine for architecture %q", arch)
}

func (m machine) args() []string {
	return append(append([]string{}, m.base...),
		"-accel", "tcg", "-m", "1024", "-smp", "1", "-nographic", "-no-reboot", "-serial", "mon:stdio")
}

// Firmware is what a machine boots with.
type Firmware int

const (
	// BIOS is qemu's default SeaBIOS.
	BIOS Firmware = iota
	// EFI is OVMF, from Debian's ovmf package.
	EFI
)

// EFI firmware code and variable-store templates: OVMF for amd64 (Debian's
// ovmf package), AAVMF for arm64 (qemu-efi-aarch64).
const (
	OVMFCode  = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars  = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	AAVMFCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

// Drive is one medium attached to a machine.
type Drive struct {
	Path   string
	Format string // qemu's driver: raw, qcow2, vpc, vmdk
	CDROM  bool   // attach as a SATA CD-ROM instead of a virtio disk
}

// QEMUMachine boots the drives on an amd64 machine; see QEMUMachineArch.
func QEMUMachine(ctx context.Context, fw Firmware, scratch string, log io.Writer, drives ...Drive) (*Console, error) {
	return QEMUMachineArch(ctx, "amd64", fw, scratch, log, drives...)
}

// QEMUMachineArch boots the drives (in order; the first is tried first)
// on a machine of architecture arch with fw and returns the console.
// Nothing is passed on a -append line: the command line is the one built
// into the medium. scratch holds the firmware's writable variable store.
func QEMUMachineArch(ctx context.Context, arch string, fw Firmware, scratch string, log io.Writer, drives ...Drive) (*Console, error) {
	m, err := machineFor(arch)
	if err != nil {
		return nil, err
	}
	args := append(m.args(), "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0")
	if fw == EFI {
		vars := filepath.Join(scratch, "EFI_VARS.fd")
		b, err := os.ReadFile(m.efiVars)
		if err != nil {
			return nil, fmt.Errorf("EFI firmware (apt packages ovmf, qemu-efi-aarch64): %w", err)
		}
		if err := os.WriteFile(vars, b, 0o644); err != nil {
			return nil, err
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+m.efiCode,
			"-drive", "if=pflash,format=raw,file="+vars)
	} else if arch != "amd64" {
		return nil, fmt.Errorf("BIOS boot exists only on amd64")
	}
	for i, d := range drives {
		id := fmt.Sprintf("d%d", i)
		args = append(args, "-drive", fmt.Sprintf("if=none,id=%s,format=%s,readonly=on,file=%s", id, d.Format, d.Path))
		if d.CDROM {
			args = append(args, m.cdrom(id, i)...)
		} else {
			args = append(args, "-device", fmt.Sprintf("virtio-blk-pci,drive=%s,bootindex=%d", id, i))
		}
	}
	return start(ctx, exec.CommandContext(ctx, m.qemu, args...), log)
}

func start(ctx context.Context, cmd *exec.Cmd, log io.Writer) (*Console, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c := &Console{cond: make(chan struct{}), done: make(chan struct{}), proc: cmd.Process}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if log != nil {
				fmt.Fprintln(log, line)
			}
			c.mu.Lock()
			c.lines = append(c.lines, line)
			close(c.cond)
			c.cond = make(chan struct{})
			c.mu.Unlock()
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// WaitFor waits until every marker has appeared on the console, in any
// order. It fails when the machine stops first or timeout passes.
func (c *Console) WaitFor(timeout time.Duration, markers ...string) error {
	return c.wait(timeout, "", func() []string { return c.missing(markers) })
}

// WaitForInOrder waits until the markers have appeared on the console in
// the given order, each on a line after the previous marker's line (a line
// can hold only one marker). It fails when the machine stops first or
// timeout passes.
func (c *Console) WaitForInOrder(timeout time.Duration, markers ...string) error {
	return c.wait(timeout, ", in order,", func() []string { return c.missingInOrder(markers) })
}

// wait polls missing (called with c.mu held) at every console update until
// it returns nothing, the machine stops or timeout passes.
func (c *Console) wait(timeout time.Duration, how string, missing func() []string) error {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		m := missing()
		cond := c.cond
		c.mu.Unlock()
		if len(m) == 0 {
			return nil
		}
		select {
		case <-cond:
		case <-c.done:
			c.mu.Lock()
			m = missing()
			c.mu.Unlock()
			if len(m) == 0 {
				return nil
			}
			return fmt.Errorf("machine stopped (%v) before printing%s %q", c.err, how, m)
		case <-deadline:
			return fmt.Errorf("no %q%s on the console after %s", m, how, timeout)
		}
	}
}

// missingInOrder returns the markers from the first one not found after its
// predecessor's line.
func (c *Console) missingInOrder(markers []string) []string {
	line := 0
	for i, m := range markers {
		for line < len(c.lines) && !strings.Contains(c.lines[line], m) {
			line++
		}
		if line == len(c.lines) {
			return markers[i:]
		}
		line++
	}
	return nil
}

func (c *Console) missing(markers []string) []string {
	var out []string
	for _, m := range markers {
		found := false
		for _, l := range c.lines {
			if strings.Contains(l, m) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, m)
		}
	}
	return out
}

// Close kills the machine and waits until it has exited, so no qemu
// outlives the test that started it (cancelling the context alone only
// starts the kill: a test binary that exits right after leaves qemu
// running). Tests call it from t.Cleanup.
func (c *Console) Close() {
	_ = c.proc.Kill()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	}
}

// Output returns everything printed so far.
func (c *Console) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}
