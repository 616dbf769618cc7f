package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/internal/buildarg"
	"github.com/lkbuild/lkbuild/internal/qemu"
	"github.com/spf13/cobra"
)

// RunOptions are the inputs of Run (the flags of `lkbuild run`).
type RunOptions struct {
	Path    string        // the artifact, a directory or a <name> prefix
	Arch    string        // amd64 or arm64; default the artifact's, else the host's
	Accel   string        // kvm or tcg; default kvm when /dev/kvm opens and Arch is the host's
	Memory  string        // qemu's -m
	CPUs    int           // processors
	Publish []string      // [hostip:]hostport:guestport[/proto]
	Disks   []string      // file[,size]
	Timeout time.Duration // 0: none
	// The serial console (default os.Stdin, os.Stdout; qemu's own
	// messages go to Stderr, default os.Stderr).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

func runCmd() *cobra.Command {
	var o RunOptions
	cmd := &cobra.Command{
		Use:   "run [flags] PATH",
		Short: "Boot a built artifact in qemu with the serial console on the terminal",
		Long: `Boot what lkbuild built in qemu, with the machine's serial console on the terminal, and exit
when the guest powers off (or reboots).

PATH is found out by its contents, its name only a hint: a directory holding one kernel+initrd (or
the output directory of a build for several platforms: its linux_<arch> sub-directory), a
<name> prefix (out/minimal for out/minimal-kernel, out/minimal-initrd.img, out/minimal-cmdline), an
ISO (BIOS when it has an x86 El Torito entry, else EFI), a raw, qcow2, vhd or vmdk disk (EFI for a
GPT, BIOS for an MBR), or a unified kernel image (EFI; started from a FAT directory as
EFI/BOOT/BOOTX64.EFI or BOOTAA64.EFI). EFI uses OVMF (amd64) or AAVMF (arm64).

A kernel+initrd boots with its <name>-cmdline, and console=ttyS0 (arm64: ttyAMA0) added at the end
unless it is already the last console. The artifact is attached read-only.

The terminal is the serial console and qemu's monitor: Ctrl-A X quits, Ctrl-A C switches to the
monitor. The exit code is 0 when the guest powers off or reboots, 1 when qemu fails or --timeout
passes (the machine is killed).

Missing qemu or firmware is reported with the Debian package to install: qemu-system-x86,
qemu-system-arm, ovmf, qemu-efi-aarch64.`,
		Example: "  lkbuild run out/                                  # the one kernel+initrd in out/\n" +
			"  lkbuild run --publish 8080:80 out/minimal         # out/minimal-kernel, -initrd.img, -cmdline\n" +
			"  lkbuild run --mem 2G --cpus 2 out/minimal-efi.img # GPT disk: OVMF\n" +
			"  lkbuild run --arch arm64 --disk data.img,1G out/linux_arm64/minimal-efi.iso\n" +
			"  lkbuild run --timeout 5m --accel tcg out/minimal.efi",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Path = args[0]
			o.Stdin, o.Stdout, o.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			return Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Arch, "arch", "", "machine architecture: amd64 or arm64 (default: the kernel's or UKI's, else the host's)")
	f.StringVar(&o.Accel, "accel", "", "kvm or tcg (default: kvm when /dev/kvm can be opened and the architecture is the host's, else tcg)")
	f.StringVar(&o.Memory, "mem", "1024", "memory in MiB, or with an M or G suffix")
	f.IntVar(&o.CPUs, "cpus", 1, "number of processors")
	f.StringArrayVar(&o.Publish, "publish", nil, "forward a host port to the guest: [hostip:]hostport:guestport[/tcp|/udp] (repeatable)")
	f.StringArrayVar(&o.Disks, "disk", nil, "attach a writable disk file[,size]; created sparse and raw with size (as the SIZE build argument: 1G, 512M; a bare number is MiB) when it does not exist (repeatable)")
	f.DurationVar(&o.Timeout, "timeout", 0, "kill the machine and fail after this long (e.g. 5m; default none)")
	return cmd
}

// Run boots o.Path in qemu until the guest powers off (nil), qemu fails,
// ctx ends or o.Timeout passes (errors); no qemu outlives it.
func Run(ctx context.Context, o RunOptions) error {
	a, err := qemu.Detect(platformDir(o.Path, o.Arch))
	if err != nil {
		return err
	}
	disks, err := parseDisks(o.Disks)
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp("", "lkbuild-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	c := qemu.Config{Arch: o.Arch, Accel: o.Accel, Memory: o.Memory, CPUs: o.CPUs, Publish: o.Publish, Disks: disks, Scratch: scratch}
	if c.Arch == "" {
		c.Arch = a.Arch
	}
	if c.Accel == "" {
		c.Accel = "tcg"
		if qemu.KVMAvailable() && (c.Arch == "" || c.Arch == runtime.GOARCH) {
			c.Accel = "kvm"
		}
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	cmd, err := qemu.Command(ctx, a, c)
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = orDefault(o.Stdin, os.Stdin), orDefaultW(o.Stdout, os.Stdout), orDefaultW(o.Stderr, os.Stderr)
	fmt.Fprintf(cmd.Stderr, "lkbuild run: %s (%v, %v) with %s\n", a.Path, a.Kind, firmwareOf(a), strings.Join(cmd.Args, " "))
	err = cmd.Run()
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && o.Timeout > 0 {
			return fmt.Errorf("timeout: the machine did not power off within %s (killed)", o.Timeout)
		}
		return fmt.Errorf("interrupted, the machine was stopped: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%s: %w", cmd.Path, err)
	}
	return nil
}

// platformDir returns path/linux_<arch> when path is the output directory
// of a build for several platforms (`lkbuild build --platform
// linux/amd64,linux/arm64`) with a sub-directory for arch (default the
// host's); else path.
func platformDir(path, arch string) string {
	if arch == "" {
		arch = runtime.GOARCH
	}
	sub := filepath.Join(path, "linux_"+arch)
	if st, err := os.Stat(sub); err == nil && st.IsDir() {
		return sub
	}
	return path
}

func firmwareOf(a qemu.Artifact) string {
	if a.Kind == qemu.KernelInitrd {
		return "loaded by qemu"
	}
	return a.Firmware.String()
}

// parseDisks reads --disk file[,size].
func parseDisks(specs []string) ([]qemu.ExtraDisk, error) {
	var out []qemu.ExtraDisk
	for _, s := range specs {
		path, size, hasSize := strings.Cut(s, ",")
		d := qemu.ExtraDisk{Path: path}
		if path == "" {
			return nil, fmt.Errorf("--disk %q: no file", s)
		}
		if hasSize {
			n, err := buildarg.Size(size)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("--disk %q: %v", s, err)
			}
			d.Size = n
		}
		out = append(out, d)
	}
	return out, nil
}

func orDefault(r, def io.Reader) io.Reader {
	if r == nil {
		return def
	}
	return r
}

func orDefaultW(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}
