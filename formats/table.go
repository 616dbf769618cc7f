package formats

// Default is built when no --target is given, as LinuxKit's default.
const Default = "kernel+initrd"

// bios are the architectures that have a PC BIOS.
var bios = []string{"amd64"}

// Reasons shared by several targets for having no boot test.
const (
	treeNoBoot = "the root filesystem tree, no kernel: nothing to boot (frontend's TestImageFormatsReproducible builds it)"
	fsNoBoot   = "an image of the root filesystem for the user's loader, which needs the filesystem's driver in the kernel and a root= of the user's choosing; frontend's TestFilesystemImagesMatchTar mounts it with the kernel's driver instead"
)

// table is every target, in the order of docs/formats.md.
var table = []Target{
	{
		Name:        "kernel+initrd",
		Initrd:      true,
		Description: "kernel, gzip cpio initrd and cmdline (<name>-kernel, <name>-initrd.img, <name>-cmdline)",
		Artifacts:   []string{KernelFile, "-initrd.img", CmdlineFile},
		Boot:        BootInitrd,
	},
	{
		Name:        "tar-kernel-initrd",
		Initrd:      true,
		Description: "<name>-initrd.tar holding kernel, initrd.img, cmdline and ucode.cpio",
		Artifacts:   []string{"-initrd.tar"},
		Boot:        BootInitrd,
		NoBootTest:  "kernel+initrd's files in one tar, which no loader boots directly; kernel+initrd is booted",
	},
	{
		Name:        "tar",
		Description: "the root filesystem tree (use -o type=tar for LinuxKit's tar output)",
		Tree:        true,
		NoBootTest:  treeNoBoot,
	},
	{
		Name:        "docker",
		Description: "the root filesystem tree with a Dockerfile (FROM scratch, ENTRYPOINT /bin/rc.init); -o type=image or --load gives the image itself, running /bin/rc.init",
		Tree:        true,
		Dockerfile:  true,
		NoBootTest:  treeNoBoot,
	},
	{
		Name:        "uki",
		Initrd:      true,
		Description: "<name>.efi: a unified kernel image (systemd EFI stub + kernel + initrd + cmdline), bootable by UEFI firmware",
		Artifacts:   []string{".efi"},
		Boot:        BootInitrd, Firmware: EFI, NeedsKernel: true,
	},
	{
		Name:        "raw-efi",
		Initrd:      true,
		Description: "<name>-efi.img: GPT disk, EFI System Partition with systemd-boot and a unified kernel image",
		Artifacts:   []string{"-efi.img"},
		Boot:        BootInitrd, Firmware: EFI, NeedsKernel: true, Disk: true,
	},
	{
		Name:        "qcow2-efi",
		Initrd:      true,
		Description: "<name>-efi.qcow2: the raw-efi disk as qcow2",
		Artifacts:   []string{"-efi.qcow2"},
		Boot:        BootInitrd, Firmware: EFI, NeedsKernel: true, Disk: true,
	},
	{
		Name:        "raw-bios",
		Initrd:      true,
		Description: "<name>-bios.img: MBR disk, FAT32 partition with kernel and initrd, GRUB for BIOS",
		Artifacts:   []string{"-bios.img"},
		Boot:        BootInitrd, Firmware: BIOS, NeedsKernel: true, Disk: true, Arches: bios, Cmdline: CmdlineGRUB,
	},
	{
		Name:        "aws",
		Initrd:      true,
		Description: "<name>.raw: the raw-bios disk, for AWS EC2 import",
		Artifacts:   []string{".raw"},
		Boot:        BootInitrd, Firmware: BIOS, NeedsKernel: true, Disk: true, Arches: bios, Cmdline: CmdlineGRUB,
	},
	{
		Name:        "qcow2-bios",
		Initrd:      true,
		Description: "<name>.qcow2: the raw-bios disk as qcow2",
		Artifacts:   []string{".qcow2"},
		Boot:        BootInitrd, Firmware: BIOS, NeedsKernel: true, Disk: true, Arches: bios, Cmdline: CmdlineGRUB,
	},
	{
		Name:        "vhd",
		Initrd:      true,
		Description: "<name>.vhd: the raw-bios disk as a fixed VHD (Azure, Hyper-V)",
		Artifacts:   []string{".vhd"},
		Boot:        BootInitrd, Firmware: BIOS, NeedsKernel: true, Disk: true, Arches: bios, Cmdline: CmdlineGRUB,
	},
	{
		Name:        "dynamic-vhd",
		Initrd:      true,
		Description: "<name>.vhd: the raw-bios disk as a dynamic VHD",
		Artifacts:   []string{".vhd"},
		Boot:        BootInitrd, Firmware: BIOS, NeedsKernel: true, Disk: true, Arches: bios, Cmdline: CmdlineGRUB,
	},
	{
		Name:        "vmdk",
		Initrd:      true,
		Description: "<name>.vmdk: the raw-bios disk as a stream-optimized VMDK (VMware)",
		Artifacts:   []string{".vmdk"},
		Boot:        BootInitrd, Firmware: BIOS, NeedsKernel: true, Disk: true, Arches: bios, Cmdline: CmdlineGRUB,
	},
	{
		Name:        "gcp",
		Initrd:      true,
		Description: "<name>.img.tar.gz: the raw-bios disk as disk.raw in a gzip tar, for Google Compute Engine",
		Artifacts:   []string{".img.tar.gz"},
		Boot:        BootInitrd, Firmware: BIOS, NeedsKernel: true, Disk: true, Arches: bios, Cmdline: CmdlineGRUB,
	},
	{
		Name:        "kernel+squashfs",
		Description: "<name>-kernel, <name>-cmdline and <name>-squashfs.img, a SquashFS (zlib) image of the root filesystem",
		Artifacts:   []string{KernelFile, CmdlineFile, "-squashfs.img"},
		Boot:        BootMedium,
		NoBootTest:  fsNoBoot,
	},
	{
		Name:        "kernel+erofs",
		Description: "<name>-kernel, <name>-cmdline and <name>-erofs.img, an uncompressed EROFS image of the root filesystem",
		Artifacts:   []string{KernelFile, CmdlineFile, "-erofs.img"},
		Boot:        BootMedium,
		NoBootTest:  fsNoBoot,
	},
	{
		Name:        "kernel+iso",
		Description: "<name>-kernel, <name>-cmdline and <name>.iso, an ISO 9660 (Rock Ridge) image of the root filesystem",
		Artifacts:   []string{KernelFile, CmdlineFile, ".iso"},
		Boot:        BootMedium,
		NoBootTest:  "a plain (not bootable) ISO of the root filesystem for the user's loader; frontend's TestImageFormatsReproducible builds it and exporter/mkimage's TestKernelISO reads it back",
	},
	{
		Name:        "iso-bios",
		Description: "<name>.iso: bootable ISO (ISOLINUX, BIOS) holding the root filesystem, mounted from the CD as root",
		Artifacts:   []string{".iso"},
		Boot:        BootMedium, Firmware: BIOS, NeedsKernel: true, Arches: bios,
	},
	{
		Name:        "iso-efi",
		Description: "<name>-efi.iso: bootable ISO (EFI, unified kernel image) holding the root filesystem, mounted from the CD as root",
		Artifacts:   []string{"-efi.iso"},
		Boot:        BootMedium, Firmware: EFI, NeedsKernel: true,
	},
	{
		Name:        "iso-efi-initrd",
		Initrd:      true,
		Description: "<name>-efi-initrd.iso: bootable ISO (EFI) whose unified kernel image carries the initrd",
		Artifacts:   []string{"-efi-initrd.iso"},
		Boot:        BootInitrd, Firmware: EFI, NeedsKernel: true,
	},
}
