package cli

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/initramfs"
	"github.com/lkbuild/lkbuild/internal/sbominput"
)

// TestSBOMSegment: lkbuild sbom --segment-output writes the initrd segment
// of the document as the root filesystem holds it (llbgen's SBOM layer):
// the file alone at the root, no "." entry, 0644, owned by root, with the
// input's time (clamped to --epoch when set), and its SHA-256 next to it.
func TestSBOMSegment(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the segment's file is owned by root: needs root, as in the build")
	}
	created := time.Date(2017, 4, 18, 16, 30, 0, 0, time.UTC)
	for name, epoch := range map[string]string{"no epoch": "", "epoch": "1400000000"} {
		dir := t.TempDir()
		in, _ := json.Marshal(sbominput.Input{Name: "x", Platform: "linux/amd64", Created: created})
		if err := os.WriteFile(filepath.Join(dir, "in.json"), in, 0o644); err != nil {
			t.Fatal(err)
		}
		out, seg := filepath.Join(dir, "out"), filepath.Join(dir, "seg")
		for _, d := range []string{out, seg} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		args := []string{"--input", filepath.Join(dir, "in.json"), "--output", filepath.Join(out, "sbom.spdx.json"), "--segment-output", seg}
		if epoch != "" {
			args = append(args, "--epoch", epoch)
		}
		cmd := sbomCmd()
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		doc, err := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 1 {
			t.Errorf("%s: the output directory holds %d entries (the staging left behind?)", name, len(ents))
		}
		gz, err := os.ReadFile(filepath.Join(seg, formats.SegmentFile))
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := os.ReadFile(filepath.Join(seg, formats.SegmentDigestFile)); string(d) != sum(gz)+"\n" {
			t.Errorf("%s: digest file %q", name, d)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		fs, err := initramfs.Unpack(zr)
		if err != nil {
			t.Fatal(err)
		}
		wantTime := created.Unix()
		if epoch != "" {
			wantTime = 1400000000
		}
		n := fs.Nodes["sbom.spdx.json"]
		if len(fs.Nodes) != 2 || n == nil || n.Mode != initramfs.TypeReg|0o644 || n.UID != 0 || n.GID != 0 ||
			n.Mtime != wantTime || n.Sum != sha256.Sum256(doc) || fs.Nodes[""].Mode != initramfs.TypeDir|0o1777 {
			t.Errorf("%s: segment holds %d nodes, sbom.spdx.json %+v", name, len(fs.Nodes), n)
		}
	}
}
