package mkimage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/exporter/initrd"
	"github.com/lkbuild/lkbuild/formats"
)

// The segment formats and their files, named in package formats (llbgen
// runs them; formats/segments.go says what each writes).
const (
	SegmentFormat           = formats.SegmentFormat
	BaseSegmentFormat       = formats.BaseSegmentFormat
	BaseSplitSegmentFormat  = formats.BaseSplitSegmentFormat
	ContainersSegmentFormat = formats.ContainersSegmentFormat
	FilesSegmentFormat      = formats.FilesSegmentFormat
	ExtraSegmentFormat      = formats.ExtraSegmentFormat
	SegmentFile             = formats.SegmentFile
	ContainersDir           = formats.ContainersDir
)

func init() {
	Formats[SegmentFormat] = writeSegment(bundleSegment)
	Formats[BaseSegmentFormat] = writeSegment(baseSegment)
	Formats[ExtraSegmentFormat] = writeSegment(extraSegment)
	Formats[BaseSplitSegmentFormat] = writeSegment(baseSplitSegment)
	Formats[ContainersSegmentFormat] = writeSegment(containersSegment)
	Formats[FilesSegmentFormat] = writeSegment(filesSegment)
}

// isSegment reports whether format writes a segment of an initrd.
func isSegment(format string) bool {
	switch format {
	case SegmentFormat, BaseSegmentFormat, BaseSplitSegmentFormat, ContainersSegmentFormat, ExtraSegmentFormat, FilesSegmentFormat, KernelSegmentFormat:
		return true
	}
	return false
}

// EmbedsInitrd reports whether format's artifacts hold the initrd and,
// besides it, only what boot/ holds (formats.Target.Initrd): such a format
// can be written from the base of the root filesystem and the initrd's
// segments.
func EmbedsInitrd(format string) bool {
	t, ok := formats.Lookup(format)
	return ok && t.Initrd
}

type segmentKind int

const (
	bundleSegment segmentKind = iota
	baseSegment
	extraSegment
	baseSplitSegment
	containersSegment
	filesSegment
)

// writeSegment writes SegmentFile. The rules keep the segments' paths
// apart, as the concatenation needs:
//   - base: the tree's "." entry and everything but boot/; the tree must
//     not hold containers/;
//   - baseSplit: the same without containers/, which must hold
//     directories only;
//   - containers: containers/ only, directories only, without ".";
//   - bundle: everything but "."; the tree must hold nothing but
//     containers/;
//   - extra: everything but ".", boot/ and containers/, which it must not
//     hold;
//   - files: "." and Options.SegmentPaths with the directories above them,
//     which must exist and be outside boot/ and containers/;
//   - base and baseSplit with Options.SegmentExclude: without the
//     non-directories of the kernel segment's tree (excludeKernel).
func writeSegment(kind segmentKind) Writer {
	return func(ctx context.Context, o Options) error {
		ents, err := os.ReadDir(o.Input)
		if err != nil {
			return err
		}
		if kind == filesSegment {
			return writeFilesSegment(ctx, o)
		}
		for _, e := range ents {
			isC := e.Name() == ContainersDir
			switch {
			case isC && (kind == baseSplitSegment || kind == containersSegment):
				if err := dirsOnly(o.Input); err != nil {
					return err
				}
			case isC && kind != bundleSegment:
				return fmt.Errorf("the base of the root filesystem holds /%s, which the bundles' segments write: it cannot be a segment of its own", ContainersDir)
			case kind == bundleSegment && (!isC || !e.IsDir()):
				return fmt.Errorf("a bundle's segment holds /%s: only /%s/ can be in one", e.Name(), ContainersDir)
			}
		}
		opt := initrd.Options{Epoch: o.Epoch, NoRoot: kind != baseSegment && kind != baseSplitSegment}
		switch kind {
		case baseSplitSegment, extraSegment:
			opt.Skip = func(rel string, isDir bool) bool { return rel == "boot" || rel == ContainersDir }
		case containersSegment:
			opt.Skip = func(rel string, isDir bool) bool { return !strings.Contains(rel, "/") && rel != ContainersDir }
		}
		if o.SegmentExclude != "" {
			if kind != baseSegment && kind != baseSplitSegment {
				return fmt.Errorf("--segment-exclude is for the base segment formats only")
			}
			if opt.Skip, err = excludeKernel(o, opt.Skip); err != nil {
				return err
			}
		}
		return writeSegmentFile(ctx, o.Output, func(w io.Writer) error {
			if err := initrd.Write(w, o.Input, opt); err != nil {
				return fmt.Errorf("initrd segment: %w", err)
			}
			return nil
		})
	}
}

// writeFilesSegment writes FilesSegmentFormat's segment.
func writeFilesSegment(ctx context.Context, o Options) error {
	want := map[string]bool{}
	for _, p := range o.SegmentPaths {
		rel := strings.Trim(filepath.ToSlash(filepath.Clean("/"+p)), "/")
		top := strings.SplitN(rel, "/", 2)[0]
		if rel == "" || top == "boot" || top == ContainersDir {
			return fmt.Errorf("segment path /%s: not a path outside /boot and /%s", rel, ContainersDir)
		}
		if _, err := os.Lstat(filepath.Join(o.Input, filepath.FromSlash(rel))); err != nil {
			return fmt.Errorf("segment path: %w", err)
		}
		for d := rel; ; d = d[:strings.LastIndex(d, "/")] {
			want[d] = true
			if !strings.Contains(d, "/") {
				break
			}
		}
	}
	opt := initrd.Options{Epoch: o.Epoch, Skip: func(rel string, _ bool) bool { return !want[rel] }}
	return writeSegmentFile(ctx, o.Output, func(w io.Writer) error {
		if err := initrd.Write(w, o.Input, opt); err != nil {
			return fmt.Errorf("initrd segment: %w", err)
		}
		return nil
	})
}

// dirsOnly fails unless root's containers/ holds directories only.
func dirsOnly(root string) error {
	c := filepath.Join(root, ContainersDir)
	fi, err := os.Lstat(c)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("/%s of the base is not a directory", ContainersDir)
	}
	return filepath.WalkDir(c, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			return fmt.Errorf("the base of the root filesystem holds /%s, in /%s, where only directories can be besides the bundles", rel, ContainersDir)
		}
		return nil
	})
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
		for _, t := range formats.All() {
			if t.Initrd {
				names = append(names, t.Name)
			}
		}
		sort.Strings(names)
		return fmt.Errorf("format %s does not embed an initrd: initrd segments are for %s only", o.Format, strings.Join(names, ", "))
	}
	return nil
}

// WriteExtraSegment writes, in out, the segment ExtraSegmentFormat writes
// for the tree at in (SegmentFile and formats.SegmentDigestFile): for a
// generated root file written by another helper command, which then needs
// no mkimage run of its own (lkbuild sbom --segment-output). epoch is
// SOURCE_DATE_EPOCH, when set.
func WriteExtraSegment(ctx context.Context, in, out string, epoch *time.Time) error {
	return writeSegment(extraSegment)(ctx, Options{Input: in, Output: out, Epoch: epoch})
}
