package formats

// The internal formats that write one segment of a segmented initrd (see
// docs/formats.md, "The initrd in segments"): llbgen runs one per bundle and
// volume, each over that layer alone, and some over the base of the root
// filesystem (kernel, init images, files); the initrd of the Initrd targets
// is their concatenation. They are not targets: --target does not take
// them, and `lkbuild mkimage` writes them only for llbgen.
const (
	// SegmentFormat writes the gzip cpio of a tree that holds nothing but
	// ContainersDir, without a "." entry.
	SegmentFormat = "initrd-segment"
	// BaseSegmentFormat writes the gzip cpio of a tree without boot/,
	// with its "." entry, refusing a tree that holds ContainersDir.
	BaseSegmentFormat = "initrd-base-segment"
	// BaseSplitSegmentFormat is BaseSegmentFormat for a base whose
	// ContainersDir holds directories only (an init image's empty
	// containers/): it leaves ContainersDir out, for
	// ContainersSegmentFormat to write before the bundles' segments.
	BaseSplitSegmentFormat = "initrd-base-segment-split"
	// ContainersSegmentFormat writes the ContainersDir of the base, which
	// must hold directories only, without a "." entry: the first segment,
	// so that bundles' directories written later win as in the merge.
	ContainersSegmentFormat = "initrd-containers-segment"
	// FilesSegmentFormat writes, from the whole base (with the files), the
	// tree's "." entry and the paths given with --segment-path and the
	// directories above them, no more: the files entries, written after a
	// base segment without them, so that a change to a files entry
	// rewrites only this small segment.
	FilesSegmentFormat = "initrd-files-segment"
	// KernelSegmentFormat writes the gzip cpio of the kernel's tree
	// outside boot/ (its modules tarball), without "." and without
	// ContainersDir: the first segment, written from the kernel's layer
	// alone, whose non-directories the base segment then leaves out (see
	// the --segment-exclude option of the base segment formats).
	KernelSegmentFormat = "initrd-kernel-segment"
	// ExtraSegmentFormat writes the gzip cpio of a tree without "." and
	// without ContainersDir: a segment after the base, for root files
	// generated from every image (the SBOM), which would otherwise make
	// the base depend on every image.
	ExtraSegmentFormat = "initrd-extra-segment"
	// SegmentFile is the file every segment format writes in its output
	// directory.
	SegmentFile = "initrd-segment.gz"
	// ContainersDir is where bundles and volumes are, the only top-level
	// entry of a bundle's segment.
	ContainersDir = "containers"
)

// SegmentFormats lists the segment formats.
var SegmentFormats = []string{SegmentFormat, BaseSegmentFormat, BaseSplitSegmentFormat, ContainersSegmentFormat, FilesSegmentFormat, ExtraSegmentFormat, KernelSegmentFormat}
