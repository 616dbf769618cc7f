// Package mkimage turns a root filesystem tree into LinuxKit's output
// artifacts. It is what `lkbuild mkimage` runs inside the build, with the
// merged rootfs mounted read-only; it knows nothing of BuildKit.
package mkimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/exporter/initrd"
)

// Options describe one run.
type Options struct {
	Format string     // output format, a key of Formats
	Name   string     // base name of the files written, LinuxKit's -name
	Input  string     // root filesystem tree
	Output string     // directory that receives the artifacts
	Epoch  *time.Time // SOURCE_DATE_EPOCH, if set
	// Arch is the target architecture (GOARCH spelling); default amd64.
	Arch string
	// Size is the whole disk size of disk formats in bytes; 0 makes a disk
	// as small as its contents allow.
	Size int64
	// BootFiles is the directory of bootloader files, one subdirectory per
	// architecture; default DefaultBootFiles.
	BootFiles string
	// Log, if set, receives one line naming the files written, and one
	// saying so when the tree has no kernel.
	Log io.Writer
}

// Writer writes the artifacts of one format.
type Writer func(o Options) error

// Formats maps each format name to its writer.
var Formats = map[string]Writer{
	"kernel+initrd":     writeKernelInitrd,
	"tar-kernel-initrd": writeTarKernelInitrd,
	"uki":               writeUKI,
	"kernel+iso":        writeKernelISO,
	"kernel+squashfs":   writeKernelSquashFS,
	"kernel+erofs":      writeKernelEROFS,
	"iso-bios":          writeISOBIOS,
	"iso-efi":           writeISOEFI,
	"iso-efi-initrd":    writeISOEFIInitrd,
	"raw-efi":           rawDisk(efiDisk, "-efi.img"),
	"qcow2-efi":         convertedDisk(efiDisk, "-efi.qcow2", toQCOW2),
	"raw-bios":          rawDisk(biosDisk, "-bios.img"),
	"aws":               rawDisk(biosDisk, ".raw"),
	"qcow2-bios":        convertedDisk(biosDisk, ".qcow2", toQCOW2),
	"vhd":               convertedDisk(biosDisk, ".vhd", vhdWriter(false)),
	"dynamic-vhd":       convertedDisk(biosDisk, ".vhd", vhdWriter(true)),
	"vmdk":              convertedDisk(biosDisk, ".vmdk", toVMDK),
	"gcp":               convertedDisk(biosDisk, ".img.tar.gz", toGCP),
}

// FormatNames returns the names of Formats, sorted.
func FormatNames() []string {
	names := make([]string, 0, len(Formats))
	for n := range Formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run writes the artifacts of o.Format. On error, files it created in
// o.Output are removed, so nothing half-written is left behind.
func Run(o Options) error {
	w, ok := Formats[o.Format]
	if !ok {
		return fmt.Errorf("unknown format %q (known: %v)", o.Format, FormatNames())
	}
	if o.Name == "" {
		return errors.New("no output name")
	}
	if _, err := os.Stat(o.Input); err != nil {
		return fmt.Errorf("input tree: %w", err)
	}
	if err := os.MkdirAll(o.Output, 0o755); err != nil {
		return err
	}
	before, err := listDir(o.Output)
	if err != nil {
		return err
	}
	if err := w(o); err != nil {
		after, _ := listDir(o.Output)
		for n := range after {
			if !before[n] {
				os.RemoveAll(filepath.Join(o.Output, n))
			}
		}
		return fmt.Errorf("%s: %w", o.Format, err)
	}
	return finish(o, before)
}

// finish gives the files Run wrote, and the output directory, the time
// SOURCE_DATE_EPOCH or the Unix epoch, as every created entry, and says
// what was written.
func finish(o Options, before map[string]bool) error {
	after, err := listDir(o.Output)
	if err != nil {
		return err
	}
	var wrote []string
	for n := range after {
		if !before[n] {
			wrote = append(wrote, n)
		}
	}
	sort.Strings(wrote)
	mt := epochOrZero(o)
	for _, n := range append(wrote, "") {
		if err := os.Chtimes(filepath.Join(o.Output, n), mt, mt); err != nil {
			return err
		}
	}
	if o.Log == nil {
		return nil
	}
	if fi, err := os.Stat(filepath.Join(o.Input, "boot", "kernel")); err != nil || !fi.Mode().IsRegular() {
		fmt.Fprintf(o.Log, "%s: the root filesystem has no boot/kernel (the YAML has no kernel section): no kernel written\n", o.Format)
	}
	fmt.Fprintf(o.Log, "%s: wrote %s\n", o.Format, strings.Join(wrote, ", "))
	return nil
}

func listDir(dir string) (map[string]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m, nil
}

// writeKernelInitrd writes <name>-kernel, <name>-initrd.img (microcode
// cpio first when boot/ucode.cpio exists, then the gzip cpio of the tree
// without boot/) and <name>-cmdline (only when not empty, as LinuxKit).
func writeKernelInitrd(o Options) error {
	base := filepath.Join(o.Output, o.Name)
	if err := copyIfExists(filepath.Join(o.Input, "boot", "kernel"), base+"-kernel"); err != nil {
		return err
	}
	f, err := os.OpenFile(base+"-initrd.img", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := appendIfExists(f, filepath.Join(o.Input, "boot", "ucode.cpio")); err != nil {
		f.Close()
		return err
	}
	if err := initrd.Write(f, o.Input, initrd.Options{Epoch: o.Epoch}); err != nil {
		f.Close()
		return fmt.Errorf("initrd: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	cmdline, err := os.ReadFile(filepath.Join(o.Input, "boot", "cmdline"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(cmdline) > 0 {
		return os.WriteFile(base+"-cmdline", cmdline, 0o644)
	}
	return nil
}

// writeTarKernelInitrd writes <name>-initrd.tar holding kernel,
// initrd.img (without microcode), cmdline and ucode.cpio, each only when
// present or not empty, as LinuxKit's tar-kernel-initrd.
func writeTarKernelInitrd(o Options) error {
	tmp, err := os.CreateTemp(o.Output, ".initrd-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := initrd.Write(tmp, o.Input, initrd.Options{Epoch: o.Epoch}); err != nil {
		return fmt.Errorf("initrd: %w", err)
	}
	mtime := time.Unix(0, 0)
	if o.Epoch != nil {
		mtime = *o.Epoch
	}
	f, err := os.OpenFile(filepath.Join(o.Output, o.Name+"-initrd.tar"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range []struct{ name, src string }{
		{"kernel", filepath.Join(o.Input, "boot", "kernel")},
		{"initrd.img", tmp.Name()},
		{"cmdline", filepath.Join(o.Input, "boot", "cmdline")},
		{"ucode.cpio", filepath.Join(o.Input, "boot", "ucode.cpio")},
	} {
		if err := tarFile(tw, m.name, m.src, mtime); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// tarFile adds the file at src to tw as name (mode 0644) unless it is
// missing or empty.
func tarFile(tw *tar.Writer, name, src string, mtime time.Time) error {
	in, err := openIfExists(src)
	if in == nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}

// openIfExists opens src; a missing file gives (nil, nil), as the boot
// files other than the kernel are optional.
func openIfExists(src string) (*os.File, error) {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return in, err
}

func copyIfExists(src, dst string) error {
	in, err := openIfExists(src)
	if in == nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func appendIfExists(w io.Writer, src string) error {
	in, err := openIfExists(src)
	if in == nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(w, in)
	return err
}
