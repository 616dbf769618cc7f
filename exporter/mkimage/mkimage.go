// Package mkimage turns a root filesystem tree into LinuxKit's output
// artifacts. It is what `lkbuild mkimage` runs inside the build, with the
// merged rootfs mounted read-only; it knows nothing of BuildKit.
package mkimage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/formats"
)

// Options describe one run.
type Options struct {
	Format string     // output format, a key of Formats (a target of package formats)
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
	// InitrdSegments, when set, are the files whose concatenation is the
	// initrd (without microcode), in order, for the formats that embed
	// one (EmbedsInitrd): the tree at Input is then only read for boot/.
	InitrdSegments []string
	// SegmentPaths are the paths FilesSegmentFormat writes.
	SegmentPaths []string
	// InitrdPartsDir, when set, makes kernel+initrd write its initrd in
	// parts (see formats.InitrdParts) instead of <name>-initrd.img: the
	// manifest into Output/formats.InitrdPartsDir and the parts that are
	// not segments (microcode, a whole initrd) into this directory, each
	// named by its SHA-256 (initrdparts.go).
	InitrdPartsDir string
	// InitrdPartsSegmented, with InitrdPartsDir and no InitrdSegments,
	// says that the initrd is segmented and that the frontend lists its
	// segments: kernel+initrd writes only its own parts (microcode) and
	// their manifest, into InitrdPartsDir/formats.InitrdPartsManifest,
	// so that it does not wait for the segments (initrdparts.go).
	InitrdPartsSegmented bool
	// SegmentExclude, for BaseSegmentFormat and BaseSplitSegmentFormat, is
	// the tree that KernelSegmentFormat wrote its segment from: the base
	// segment leaves out its non-directories (see excludeKernel).
	SegmentExclude string
	// Log, if set, receives one line naming the files written, and one
	// saying so when the tree has no kernel.
	Log io.Writer
}

// Writer writes the artifacts of one format; it stops with ctx's error
// when ctx is cancelled.
type Writer func(ctx context.Context, o Options) error

// Formats maps the name of each target of package formats that is not a
// tree to its writer.
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
// o.Output are removed, so nothing half-written is left behind. Cancelling
// ctx stops the writer at its next write: Run then cleans up and returns
// ctx's error.
func Run(ctx context.Context, o Options) error {
	w, ok := Formats[o.Format]
	if !ok {
		return fmt.Errorf("unknown format %q (known: %v)", o.Format, FormatNames())
	}
	if t, ok := formats.Lookup(o.Format); ok {
		if err := t.Supports(o.arch()); err != nil {
			return err
		}
	}
	if o.Name == "" {
		return errors.New("no output name")
	}
	if err := checkSegments(o); err != nil {
		return err
	}
	if err := checkInitrdParts(o); err != nil {
		return err
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
	if err := ctx.Err(); err != nil {
		return err
	}
	err = w(ctx, o)
	if err == nil && isSegment(o.Format) {
		err = writeSegmentDigest(o.Output)
	}
	if err != nil {
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
	if fi, err := os.Stat(filepath.Join(o.Input, "boot", "kernel")); !isSegment(o.Format) && (err != nil || !fi.Mode().IsRegular()) {
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
func writeKernelInitrd(ctx context.Context, o Options) error {
	base := filepath.Join(o.Output, o.Name)
	if err := o.copyBoot(ctx, KernelFile, base+"-kernel"); err != nil {
		return err
	}
	if o.InitrdPartsDir != "" {
		if err := o.writeInitrdParts(ctx, filepath.Base(base)+"-initrd.img"); err != nil {
			return err
		}
		return o.writeCmdline(ctx, base+"-cmdline")
	}
	err := writeFile(ctx, base+"-initrd.img", func(w io.Writer) error {
		if err := o.appendBoot(w, UCodeFile); err != nil {
			return err
		}
		return o.writeInitrd(w)
	})
	if err != nil {
		return err
	}
	return o.writeCmdline(ctx, base+"-cmdline")
}

// writeCmdline copies boot/cmdline to dst unless it is absent or empty,
// as LinuxKit writes no empty cmdline file.
func (o Options) writeCmdline(ctx context.Context, dst string) error {
	cmdline, err := o.readBoot(CmdlineFile)
	if err != nil || len(cmdline) == 0 {
		return err
	}
	return writeFile(ctx, dst, func(w io.Writer) error { _, err := w.Write(cmdline); return err })
}

// writeTarKernelInitrd writes <name>-initrd.tar holding kernel,
// initrd.img (without microcode), cmdline and ucode.cpio, each only when
// present or not empty, as LinuxKit's tar-kernel-initrd.
func writeTarKernelInitrd(ctx context.Context, o Options) error {
	tmp, err := os.CreateTemp(o.Output, ".initrd-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := o.writeInitrd(ctxFile{ctx, tmp}); err != nil {
		return err
	}
	fi, err := tmp.Stat()
	if err != nil {
		return err
	}
	initrdImg := &found{src: tmp.Name(), size: fi.Size()}
	mtime := time.Unix(0, 0)
	if o.Epoch != nil {
		mtime = *o.Epoch
	}
	return writeFile(ctx, filepath.Join(o.Output, o.Name+"-initrd.tar"), func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, m := range []struct {
			name string
			b    BootFile
		}{
			{"kernel", KernelFile},
			{"initrd.img", BootFile{Path: "initrd.img"}},
			{"cmdline", CmdlineFile},
			{"ucode.cpio", UCodeFile},
		} {
			f := initrdImg
			if m.name != "initrd.img" {
				if f, err = o.locate(m.b); err != nil {
					return err
				}
			}
			if f == nil || f.size == 0 {
				continue
			}
			if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: f.size, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
			if err := f.copyTo(tw, m.b); err != nil {
				return err
			}
		}
		return tw.Close()
	})
}

// ctxFile is an output file whose writes fail once ctx is cancelled, so a
// writer stops at its next write.
type ctxFile struct {
	ctx context.Context
	*os.File
}

func (c ctxFile) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.File.Write(p)
}

// writeFile creates dst and fills it with fill; writes fail once ctx is
// cancelled.
func writeFile(ctx context.Context, dst string, fill func(io.Writer) error) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := fill(ctxFile{ctx, f}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
