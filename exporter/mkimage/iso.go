package mkimage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lkbuild/lkbuild/exporter/disk"
	"github.com/lkbuild/lkbuild/exporter/erofs"
	"github.com/lkbuild/lkbuild/exporter/fstree"
	"github.com/lkbuild/lkbuild/exporter/initrd"
	"github.com/lkbuild/lkbuild/exporter/iso9660"
	"github.com/lkbuild/lkbuild/exporter/squashfs"
)

// volumeID is the ISO volume label of every ISO format (LinuxKit's -V).
const volumeID = "LinuxKit"

// treeFiles walks the root filesystem into ISO files, leaving out what
// skip says, with modification times clamped to SOURCE_DATE_EPOCH.
func treeFiles(o Options, skip func(string, bool) bool) ([]iso9660.File, error) {
	entries, err := fstree.Walk(o.Input, fstree.Options{Skip: skip})
	if err != nil {
		return nil, err
	}
	for i := range entries {
		if o.Epoch != nil && entries[i].ModTime.After(*o.Epoch) {
			entries[i].ModTime = *o.Epoch
		}
	}
	return iso9660.FromTree(o.Input, entries, ""), nil
}

func writeISO(ctx context.Context, dst string, files []iso9660.File, opt iso9660.Options) error {
	return writeFile(ctx, dst, func(w io.Writer) error { return iso9660.Write(w, files, opt) })
}

func skipCmdline(rel string, _ bool) bool { return rel == "boot/cmdline" }

// withRoot adds root=dev to a command line that names no root device, as
// LinuxKit does for the ISOs that carry the root filesystem.
func withRoot(cmdline, dev string) string {
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, "root=") {
			return cmdline
		}
	}
	return strings.TrimSpace(cmdline + " root=" + dev)
}

// isoRootDevice is where an ISO's root filesystem appears: the first CD
// drive on amd64; on arm64 LinuxKit's images attach the ISO as a virtio
// disk.
func isoRootDevice(arch string) string {
	if arch == "arm64" {
		return "/dev/vda"
	}
	return "/dev/sr0"
}

// writeKernelISO writes <name>-kernel, <name>-cmdline and <name>.iso, a
// plain (not bootable) ISO of the root filesystem without boot/.
func writeKernelISO(ctx context.Context, o Options) error {
	base := filepath.Join(o.Output, o.Name)
	if err := o.copyBoot(ctx, KernelFile, base+"-kernel"); err != nil {
		return err
	}
	if err := o.writeCmdline(ctx, base+"-cmdline"); err != nil {
		return err
	}
	files, err := treeFiles(o, initrd.SkipBoot)
	if err != nil {
		return err
	}
	return writeISO(ctx, base+".iso", files, iso9660.Options{VolumeID: volumeID, ModTime: epochOrZero(o)})
}

// writeISOBIOS writes <name>.iso: the root filesystem (boot/cmdline left
// out) with ISOLINUX, which boots /boot/kernel with the command line plus
// root=/dev/sr0, so the root filesystem is the ISO itself. The image is
// isohybrid: its MBR boots ISOLINUX from a disk too.
func writeISOBIOS(ctx context.Context, o Options) error {
	kernel, b, err := bootCmdline(o)
	if err != nil {
		return err
	}
	files, err := treeFiles(o, skipCmdline)
	if err != nil {
		return err
	}
	// ISOLINUX loads /boot/kernel by name: when that is a symlink inside
	// the root filesystem, the ISO gets the file it leads to there.
	for i := range files {
		if f := &files[i]; f.Path == KernelFile.Path && !f.Mode.IsRegular() {
			f.Entry = fstree.Entry{Path: f.Path, Mode: 0o644, ModTime: f.ModTime, Size: kernel.size}
			f.Src = kernel.src
		}
	}
	if err := absent(o, "isolinux"); err != nil {
		return err
	}
	isolinux, err := readBootFile(o, "isolinux.bin")
	if err != nil {
		return err
	}
	ldlinux, err := bootFile(o, "ldlinux.c32")
	if err != nil {
		return err
	}
	hybrid, err := readBootFile(o, "isohdpfx.bin")
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf("DEFAULT linux\nLABEL linux\n    KERNEL /boot/kernel\n    APPEND %s\n", withRoot(b, "/dev/sr0"))
	mt := epochOrZero(o)
	files = append(files,
		iso9660.File{Entry: fstree.Entry{Path: "isolinux", Mode: fs.ModeDir | 0o755, ModTime: mt}},
		iso9660.File{Entry: fstree.Entry{Path: "isolinux/isolinux.bin", Mode: 0o644, ModTime: mt}, Data: isolinux},
		iso9660.File{Entry: fstree.Entry{Path: "isolinux/ldlinux.c32", Mode: 0o644, ModTime: mt, Size: fileSize(ldlinux)}, Src: ldlinux},
		iso9660.File{Entry: fstree.Entry{Path: "isolinux/isolinux.cfg", Mode: 0o644, ModTime: mt}, Data: []byte(cfg)},
	)
	return writeISO(ctx, filepath.Join(o.Output, o.Name+".iso"), files, iso9660.Options{
		VolumeID: volumeID, ModTime: mt, Catalog: "isolinux/boot.cat",
		Boot: []iso9660.BootEntry{{Path: "isolinux/isolinux.bin", Platform: iso9660.X86, LoadSectors: 4, BootInfoTable: true}},
		// isohybrid, as LinuxKit runs it: the image also boots from a disk
		// (a USB stick written with dd).
		PadTo: iso9660.HybridPad,
		SystemArea: func(lba func(string) (uint32, bool), total int64) ([]byte, error) {
			l, ok := lba("isolinux/isolinux.bin")
			if !ok {
				return nil, fmt.Errorf("isolinux.bin not laid out")
			}
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", cfg, total)))
			return iso9660.HybridMBR(hybrid, l, total, binary.LittleEndian.Uint32(sum[:]))
		},
	})
}

// writeISOEFI writes <name>-efi.iso: the root filesystem (boot/cmdline
// left out) and a hidden El Torito EFI image whose BOOTX64.EFI is a
// unified kernel image of the kernel with the command line plus
// root=/dev/sr0 and no initrd: the root filesystem is the ISO itself.
func writeISOEFI(ctx context.Context, o Options) error {
	kernel, cmdline, err := bootCmdline(o)
	if err != nil {
		return err
	}
	b := &bootInputs{kernel: kernel, cmdline: withRoot(cmdline, isoRootDevice(o.arch()))}
	files, err := treeFiles(o, skipCmdline)
	if err != nil {
		return err
	}
	return efiISO(ctx, o, b, files, o.Name+"-efi.iso")
}

// writeISOEFIInitrd writes <name>-efi-initrd.iso, whose El Torito EFI image
// holds a unified kernel image with the kernel, the initrd and the command
// line: the system runs from the initrd, like kernel+initrd.
func writeISOEFIInitrd(ctx context.Context, o Options) error {
	b, err := prepareBoot(ctx, o)
	if err != nil {
		return err
	}
	defer b.cleanup()
	return efiISO(ctx, o, b, nil, o.Name+"-efi-initrd.iso")
}

// efiISO writes an ISO of files plus a hidden EFI boot image (FAT) holding
// the unified kernel image of b as the removable-media boot loader.
func efiISO(ctx context.Context, o Options, b *bootInputs, files []iso9660.File, name string) error {
	bootName, err := efiBootName(o.arch())
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(o.Output, ".efiboot-")
	if err != nil {
		return err
	}
	tmp.Close()
	ukiPath, fatPath := tmp.Name()+".efi", tmp.Name()
	defer os.Remove(ukiPath)
	defer os.Remove(fatPath)
	if err := writeUKIFile(ctx, o, b, ukiPath); err != nil {
		return fmt.Errorf("unified kernel image: %w", err)
	}
	if err := disk.Write(ctx, fatPath, disk.Options{
		Scheme: disk.NoTable, FAT16: true, Label: "EFIBOOT", ModTime: epochOrZero(o),
		Files: []disk.File{{Path: "EFI/BOOT/" + bootName, Src: ukiPath}},
	}); err != nil {
		return fmt.Errorf("EFI boot image: %w", err)
	}
	if err := absent(o, "efiboot.img"); err != nil {
		return err
	}
	mt := epochOrZero(o)
	files = append(files, iso9660.File{Entry: fstree.Entry{Path: "efiboot.img", Mode: 0o644, ModTime: mt, Size: fileSize(fatPath)}, Src: fatPath, Hidden: true})
	return writeISO(ctx, filepath.Join(o.Output, name), files, iso9660.Options{
		VolumeID: volumeID, ModTime: mt,
		Boot: []iso9660.BootEntry{{Path: "efiboot.img", Platform: iso9660.EFI}},
	})
}

// absent fails when the root filesystem already has name at its top,
// which the format needs for its own files.
func absent(o Options, name string) error {
	if _, err := os.Lstat(filepath.Join(o.Input, name)); err == nil {
		return fmt.Errorf("the root filesystem has /%s, which this format writes itself", name)
	}
	return nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// writeKernelSquashFS writes <name>-kernel, <name>-cmdline and
// <name>-squashfs.img, the root filesystem without boot/ as SquashFS.
func writeKernelSquashFS(ctx context.Context, o Options) error {
	return writeKernelImage(ctx, o, "-squashfs.img", func(f ctxFile, entries []fstree.Entry) error {
		return squashfs.Write(f, o.Input, entries, squashfs.Options{ModTime: epochOrZero(o), Epoch: o.Epoch})
	})
}

// writeKernelEROFS writes <name>-kernel, <name>-cmdline and
// <name>-erofs.img, the root filesystem without boot/ as EROFS.
func writeKernelEROFS(ctx context.Context, o Options) error {
	return writeKernelImage(ctx, o, "-erofs.img", func(f ctxFile, entries []fstree.Entry) error {
		return erofs.Write(f, o.Input, entries, erofs.Options{ModTime: epochOrZero(o), Epoch: o.Epoch})
	})
}

// writeKernelImage writes the kernel and command line of LinuxKit's
// kernel+<filesystem> formats and the filesystem image of the tree
// without boot/ with write.
func writeKernelImage(ctx context.Context, o Options, suffix string, write func(ctxFile, []fstree.Entry) error) error {
	base := filepath.Join(o.Output, o.Name)
	if err := o.copyBoot(ctx, KernelFile, base+"-kernel"); err != nil {
		return err
	}
	if err := o.writeCmdline(ctx, base+"-cmdline"); err != nil {
		return err
	}
	entries, err := fstree.Walk(o.Input, fstree.Options{Skip: initrd.SkipBoot})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(base+suffix, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := write(ctxFile{ctx, f}, entries); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
