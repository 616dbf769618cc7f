package mkimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lkbuild/lkbuild/exporter/initrd"
)

// The formats that write one segment of a segmented initrd (see
// docs/formats.md): the frontend runs one per bundle and volume, each over
// that layer alone, and one over the base of the root filesystem (kernel,
// init images, files); the initrd is their concatenation, bundles first,
// base last.
const (
	// SegmentFormat writes the gzip cpio of a tree that holds nothing but
	// containers/, without a "." entry.
	SegmentFormat = "initrd-segment"
	// BaseSegmentFormat writes the gzip cpio of a tree without boot/,
	// with its "." entry, refusing a tree that holds containers/.
	BaseSegmentFormat = "initrd-base-segment"
	// ExtraSegmentFormat writes the gzip cpio of a tree without "." and
	// without containers/: a segment after the base, for root files
	// generated from every image (which would make the base depend on
	// every image).
	ExtraSegmentFormat = "initrd-extra-segment"
	// SegmentFile is the file both write in the output directory.
	SegmentFile = "initrd-segment.gz"
	// ContainersDir is where bundles and volumes are, the only top-level
	// entry of a bundle's segment.
	ContainersDir = "containers"
)

func init() {
	Formats[SegmentFormat] = writeSegment(bundleSegment)
	Formats[BaseSegmentFormat] = writeSegment(baseSegment)
	Formats[ExtraSegmentFormat] = writeSegment(extraSegment)
}

// initrdFormats are the formats whose artifacts embed the initrd and read
// nothing else of the tree but boot/: they accept Options.InitrdSegments.
var initrdFormats = map[string]bool{
	"kernel+initrd": true, "tar-kernel-initrd": true, "uki": true, "iso-efi-initrd": true,
	"raw-efi": true, "qcow2-efi": true, "raw-bios": true, "qcow2-bios": true, "aws": true,
	"vhd": true, "dynamic-vhd": true, "vmdk": true, "gcp": true,
}

// EmbedsInitrd reports whether format's artifacts hold the initrd and,
// besides it, only what boot/ holds: such a format can be written from
// the base of the root filesystem and the initrd's segments.
func EmbedsInitrd(format string) bool { return initrdFormats[format] }

type segmentKind int

const (
	bundleSegment segmentKind = iota
	baseSegment
	extraSegment
)

// writeSegment writes SegmentFile: for the base, the tree's "." entry and
// everything but boot/, and the tree must not hold containers/; for a
// bundle, everything but "." and the tree must hold nothing but
// containers/; for an extra segment, everything but "." and boot/, and no
// containers/. The rules keep the segments' paths apart, as the
// concatenation needs.
func writeSegment(kind segmentKind) Writer {
	base := kind == baseSegment
	return func(ctx context.Context, o Options) error {
		ents, err := os.ReadDir(o.Input)
		if err != nil {
			return err
		}
		for _, e := range ents {
			switch {
			case kind != bundleSegment && e.Name() == ContainersDir:
				return fmt.Errorf("the base of the root filesystem holds /%s, which the bundles' segments write: it cannot be a segment of its own", ContainersDir)
			case kind == bundleSegment && (e.Name() != ContainersDir || !e.IsDir()):
				return fmt.Errorf("a bundle's segment holds /%s: only /%s/ can be in one", e.Name(), ContainersDir)
			}
		}
		return writeFile(ctx, filepath.Join(o.Output, SegmentFile), func(w io.Writer) error {
			if err := initrd.Write(w, o.Input, initrd.Options{Epoch: o.Epoch, NoRoot: !base}); err != nil {
				return fmt.Errorf("initrd segment: %w", err)
			}
			return nil
		})
	}
}

// writeInitrd writes the initrd, without microcode, to w: the
// concatenation of o.InitrdSegments when there are any, else the gzip cpio
// of the tree.
func (o Options) writeInitrd(w io.Writer) error {
	if len(o.InitrdSegments) == 0 {
		if err := initrd.Write(w, o.Input, initrd.Options{Epoch: o.Epoch}); err != nil {
			return fmt.Errorf("initrd: %w", err)
		}
		return nil
	}
	for _, s := range o.InitrdSegments {
		f, err := os.Open(s)
		if err != nil {
			return fmt.Errorf("initrd segment: %w", err)
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("initrd segment %s: %w", s, err)
		}
	}
	return nil
}

// checkSegments refuses segments for a format that does not embed the
// initrd, which would silently ignore them.
func checkSegments(o Options) error {
	if len(o.InitrdSegments) > 0 && !EmbedsInitrd(o.Format) {
		var names []string
		for n := range initrdFormats {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("format %s does not embed an initrd: initrd segments are for %s only", o.Format, strings.Join(names, ", "))
	}
	return nil
}
