package mkimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/formats"
)

// TestInitrdParts writes kernel+initrd whole and in parts, with and
// without segments and microcode: the parts, concatenated in the
// manifest's order, are the whole initrd byte for byte; the parts mkimage
// writes are named by their SHA-256, and the manifest replaces the initrd.
func TestInitrdParts(t *testing.T) {
	ctx := context.Background()
	epoch := time.Unix(4000, 0).UTC()
	for _, tc := range []struct {
		name          string
		ucode, segged bool
	}{{"whole", false, false}, {"whole with microcode", true, false}, {"segments", false, true}, {"segments with microcode", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			mkTree(t, base, segTree, func(p string) bool { return !strings.HasPrefix(p, "containers") })
			if tc.ucode {
				if err := os.WriteFile(filepath.Join(base, "boot/ucode.cpio"), []byte("UCODE"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var segs []string
			if tc.segged {
				for _, b := range []string{"containers/onboot/000-a", "containers/services/b"} {
					in, out := t.TempDir(), t.TempDir()
					mkTree(t, in, segTree, func(p string) bool {
						return strings.HasPrefix(b, strings.TrimSuffix(p, "/")) || strings.HasPrefix(p, b+"/")
					})
					if err := Run(ctx, Options{Format: SegmentFormat, Name: "seg", Input: in, Output: out, Epoch: &epoch}); err != nil {
						t.Fatal(err)
					}
					segs = append(segs, filepath.Join(out, SegmentFile))
				}
				// The base segment's digest is computed when the
				// sidecar is missing.
				out := t.TempDir()
				if err := Run(ctx, Options{Format: BaseSegmentFormat, Name: "seg", Input: base, Output: out, Epoch: &epoch}); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(out, formats.SegmentDigestFile)); err != nil {
					t.Fatal(err)
				}
				segs = append(segs, filepath.Join(out, SegmentFile))
			}
			whole, parted, partsDir := t.TempDir(), t.TempDir(), t.TempDir()
			if err := Run(ctx, Options{Format: "kernel+initrd", Name: "sys", Input: base, Output: whole, Epoch: &epoch, InitrdSegments: segs}); err != nil {
				t.Fatal(err)
			}
			if err := Run(ctx, Options{Format: "kernel+initrd", Name: "sys", Input: base, Output: parted, Epoch: &epoch, InitrdSegments: segs, InitrdPartsDir: partsDir}); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(whole, "sys-initrd.img"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(parted, "sys-initrd.img")); err == nil {
				t.Error("the initrd was written too")
			}
			for _, n := range []string{"sys-kernel", "sys-cmdline"} {
				a, _ := os.ReadFile(filepath.Join(whole, n))
				b, _ := os.ReadFile(filepath.Join(parted, n))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs", n)
				}
			}
			b, err := os.ReadFile(filepath.Join(parted, formats.InitrdPartsDir, formats.InitrdPartsManifest))
			if err != nil {
				t.Fatal(err)
			}
			m, err := formats.ParseInitrdParts(b)
			if err != nil {
				t.Fatal(err)
			}
			if m.Initrd != "sys-initrd.img" {
				t.Errorf("manifest names %q", m.Initrd)
			}
			wantParts := len(segs)
			if !tc.segged {
				wantParts = 1
			}
			if tc.ucode {
				wantParts++
			}
			if len(m.Parts) != wantParts {
				t.Fatalf("%d parts, want %d: %+v", len(m.Parts), wantParts, m.Parts)
			}
			var got []byte
			for i, p := range m.Parts {
				src := filepath.Join(partsDir, p.SHA256)
				if p.Segment >= 0 {
					src = segs[p.Segment]
					if p.Segment != i-btoi(tc.ucode) {
						t.Errorf("part %d is segment %d", i, p.Segment)
					}
				} else if tc.segged && (i > 0 || !tc.ucode) {
					t.Errorf("part %d is not a segment", i)
				}
				data, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(data)
				if hex.EncodeToString(sum[:]) != p.SHA256 || int64(len(data)) != p.Size {
					t.Errorf("part %d: %d bytes, SHA-256 %x; manifest says %d, %s", i, len(data), sum, p.Size, p.SHA256)
				}
				got = append(got, data...)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the parts make %d bytes that differ from the initrd's %d", len(got), len(want))
			}
			if !tc.segged {
				return
			}
			// The frontend lists the segments: the step writes its own
			// parts and their manifest only, which with the segments
			// after them is the manifest above.
			out, own := t.TempDir(), t.TempDir()
			if err := Run(ctx, Options{Format: "kernel+initrd", Name: "sys", Input: base, Output: out, Epoch: &epoch, InitrdPartsDir: own, InitrdPartsSegmented: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(out, formats.InitrdPartsDir)); err == nil {
				t.Error("a manifest in the output")
			}
			for _, n := range []string{"sys-kernel", "sys-cmdline"} {
				a, _ := os.ReadFile(filepath.Join(whole, n))
				b, _ := os.ReadFile(filepath.Join(out, n))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs", n)
				}
			}
			ob, err := os.ReadFile(filepath.Join(own, formats.InitrdPartsManifest))
			if err != nil {
				t.Fatal(err)
			}
			om, err := formats.ParseInitrdParts(ob)
			if err != nil {
				t.Fatal(err)
			}
			full := om.Parts
			for _, p := range m.Parts {
				if p.Segment >= 0 {
					full = append(full, p)
				}
			}
			if om.Initrd != m.Initrd || fmt.Sprint(full) != fmt.Sprint(m.Parts) {
				t.Errorf("own parts %+v and the segments make %+v, want %+v", om, full, m.Parts)
			}
			for _, p := range om.Parts {
				if _, err := os.Stat(filepath.Join(own, p.SHA256)); err != nil {
					t.Errorf("own part %s not written: %v", p.SHA256, err)
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSegmentDigestFile: every segment format writes the SHA-256 of its
// segment next to it.
func TestSegmentDigestFile(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	mkTree(t, in, segTree, func(p string) bool { return strings.HasPrefix(p, "containers/") })
	if err := Run(context.Background(), Options{Format: SegmentFormat, Name: "seg", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(out, SegmentFile))
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.ReadFile(filepath.Join(out, formats.SegmentDigestFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(seg)
	if string(d) != hex.EncodeToString(sum[:])+"\n" {
		t.Errorf("%s holds %q, want the segment's SHA-256", formats.SegmentDigestFile, d)
	}
}

// TestInitrdPartsOnlyKernelInitrd: another format refuses InitrdPartsDir
// rather than ignore it.
func TestInitrdPartsOnlyKernelInitrd(t *testing.T) {
	in := t.TempDir()
	mkTree(t, in, segTree, func(p string) bool { return !strings.HasPrefix(p, "containers") })
	err := Run(context.Background(), Options{Format: "uki", Name: "sys", Input: in, Output: t.TempDir(), InitrdPartsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "in parts") {
		t.Errorf("uki with InitrdPartsDir: %v", err)
	}
}
