package mkimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lkbuild/lkbuild/formats"
)

// writeSegmentFile writes SegmentFile in dir with what fill writes and,
// hashed on the way, formats.SegmentDigestFile next to it, so that the
// initrd's parts can be listed without reading the segments again
// (writeInitrdParts).
func writeSegmentFile(ctx context.Context, dir string, fill func(io.Writer) error) error {
	h := sha256.New()
	if err := writeFile(ctx, filepath.Join(dir, SegmentFile), func(w io.Writer) error { return fill(io.MultiWriter(w, h)) }); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, formats.SegmentDigestFile), []byte(hex.EncodeToString(h.Sum(nil))+"\n"), 0o644)
}

// writeSegmentDigest writes formats.SegmentDigestFile next to the segment
// in dir when its writer did not (reading the segment again).
func writeSegmentDigest(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, formats.SegmentDigestFile)); err == nil {
		return nil
	}
	d, _, err := hashFile(filepath.Join(dir, SegmentFile))
	if err != nil {
		return fmt.Errorf("initrd segment digest: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, formats.SegmentDigestFile), []byte(d+"\n"), 0o644)
}

// hashFile returns the hex SHA-256 and the size of the file at p.
func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// segmentDigest returns the SHA-256 and size of the segment at p, from
// its SegmentDigestFile when there is one (checked against the size).
func segmentDigest(p string) (string, int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", 0, err
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(p), formats.SegmentDigestFile)); err == nil {
		if d := strings.TrimSuffix(string(b), "\n"); formats.ValidSHA256(d) {
			return d, fi.Size(), nil
		}
		return "", 0, fmt.Errorf("%s: not a SHA-256", formats.SegmentDigestFile)
	}
	return hashFile(p)
}

// writeInitrdParts writes the initrd named initrd in parts (see
// formats.InitrdParts): the microcode cpio (when boot/ucode.cpio exists),
// then the segments, or the whole gzip cpio of the tree when the initrd
// is not segmented. The parts that are not segments go to
// o.InitrdPartsDir, named by their SHA-256; the manifest to
// o.Output/formats.InitrdPartsDir.
func (o Options) writeInitrdParts(ctx context.Context, initrd string) error {
	m := formats.InitrdParts{Initrd: initrd, Parts: []formats.InitrdPart{}}
	add := func(fill func(io.Writer) error) error {
		p, err := o.writePart(ctx, fill)
		if err == nil && p.Size > 0 {
			m.Parts = append(m.Parts, p)
		}
		return err
	}
	if err := add(func(w io.Writer) error { return o.appendBoot(w, UCodeFile) }); err != nil {
		return err
	}
	if len(o.InitrdSegments) == 0 && !o.InitrdPartsSegmented {
		if err := add(o.writeInitrd); err != nil {
			return err
		}
	}
	for i, s := range o.InitrdSegments {
		d, n, err := segmentDigest(s)
		if err != nil {
			return fmt.Errorf("initrd segment %s: %w", s, err)
		}
		m.Parts = append(m.Parts, formats.InitrdPart{SHA256: d, Size: n, Segment: i})
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Join(o.Output, formats.InitrdPartsDir)
	if o.InitrdPartsSegmented {
		// The manifest of this step's parts, which the frontend
		// completes with the segments (formats.InitrdParts).
		dir = o.InitrdPartsDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mf := filepath.Join(dir, formats.InitrdPartsManifest)
	if err := writeFile(ctx, mf, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	mt := epochOrZero(o)
	return os.Chtimes(mf, mt, mt)
}

// writePart writes what fill writes into o.InitrdPartsDir, named by its
// SHA-256, and returns its entry (segment -1); nothing is kept when fill
// writes nothing.
func (o Options) writePart(ctx context.Context, fill func(io.Writer) error) (formats.InitrdPart, error) {
	if err := os.MkdirAll(o.InitrdPartsDir, 0o755); err != nil {
		return formats.InitrdPart{}, err
	}
	tmp := filepath.Join(o.InitrdPartsDir, ".part")
	h := sha256.New()
	var n countWriter
	err := writeFile(ctx, tmp, func(w io.Writer) error { return fill(io.MultiWriter(w, h, &n)) })
	if err != nil || n == 0 {
		os.Remove(tmp)
		return formats.InitrdPart{}, err
	}
	d := hex.EncodeToString(h.Sum(nil))
	p := filepath.Join(o.InitrdPartsDir, d)
	if err := os.Rename(tmp, p); err != nil {
		return formats.InitrdPart{}, err
	}
	mt := epochOrZero(o)
	return formats.InitrdPart{SHA256: d, Size: int64(n), Segment: -1}, os.Chtimes(p, mt, mt)
}

// countWriter counts the bytes written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// checkInitrdParts refuses InitrdPartsDir for a format other than
// formats.InitrdPartsTarget, which would silently ignore it, and
// InitrdPartsSegmented without InitrdPartsDir or with segments.
func checkInitrdParts(o Options) error {
	if o.InitrdPartsDir != "" && o.Format != formats.InitrdPartsTarget {
		return fmt.Errorf("format %s writes no initrd in parts: only %s does", o.Format, formats.InitrdPartsTarget)
	}
	if o.InitrdPartsSegmented && (o.InitrdPartsDir == "" || len(o.InitrdSegments) > 0) {
		return fmt.Errorf("--initrd-parts-segmented needs --initrd-parts-dir and no --initrd-segment (the frontend lists the segments)")
	}
	return nil
}
