package ocilayout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func tree(t *testing.T, content string) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin/tool"), []byte(content), 0o755)
	os.Link(filepath.Join(root, "bin/tool"), filepath.Join(root, "bin/tool2"))
	os.Symlink("tool", filepath.Join(root, "bin/link"))
	return root
}

func config(arch string) []byte {
	dt, _ := json.Marshal(ocispecs.Image{Platform: ocispecs.Platform{OS: "linux", Architecture: arch},
		Config: ocispecs.ImageConfig{Cmd: []string{"/bin/tool"}},
		RootFS: ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("old")}}})
	return dt
}

func readBlob(t *testing.T, dir string, d ocispecs.Descriptor, v any) []byte {
	t.Helper()
	dt, err := os.ReadFile(filepath.Join(dir, "blobs/sha256", d.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(dt) != d.Digest || int64(len(dt)) != d.Size {
		t.Fatalf("blob %s does not match its descriptor", d.Digest)
	}
	if v != nil {
		if err := json.Unmarshal(dt, v); err != nil {
			t.Fatal(err)
		}
	}
	return dt
}

func TestWrite(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	images := []Image{{Rootfs: tree(t, "amd64"), Config: config("amd64")}, {Rootfs: tree(t, "arm64"), Config: config("arm64")}}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := Write(dir, "docker.io/library/tool:1", images, &epoch); err != nil {
		t.Fatal(err)
	}
	var top, idx ocispecs.Index
	dt, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(dt, &top); err != nil || len(top.Manifests) != 1 || top.Manifests[0].Annotations[ocispecs.AnnotationRefName] != "docker.io/library/tool:1" {
		t.Fatalf("index.json = %s (%v)", dt, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Fatal(err)
	}
	readBlob(t, dir, top.Manifests[0], &idx)
	if len(idx.Manifests) != 2 || idx.Manifests[0].Platform.Architecture != "amd64" || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("image index = %+v", idx.Manifests)
	}
	for i, md := range idx.Manifests {
		var m ocispecs.Manifest
		var cfg ocispecs.Image
		readBlob(t, dir, md, &m)
		readBlob(t, dir, m.Config, &cfg)
		layer := readBlob(t, dir, m.Layers[0], nil)
		zr, err := gzip.NewReader(bytes.NewReader(layer))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		tr := tar.NewReader(io.TeeReader(zr, h))
		got := ""
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(tr)
			got += fmt.Sprintf("%s %c %o %s %s %d|", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Linkname, body, hdr.ModTime.Unix())
		}
		io.Copy(h, zr)
		arch := []string{"amd64", "arm64"}[i]
		if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0].Encoded() != fmt.Sprintf("%x", h.Sum(nil)) || cfg.Config.Cmd[0] != "/bin/tool" {
			t.Errorf("%s config = %+v", arch, cfg)
		}
		want := fmt.Sprintf("bin/ 5 755   1700000000|bin/link 2 777 tool  1700000000|bin/tool 0 755  %s 1700000000|bin/tool2 1 755 bin/tool  1700000000|", arch)
		if got != want {
			t.Errorf("%s layer:\n got %s\nwant %s", arch, got, want)
		}
	}

	// Equal trees and epoch give equal bytes.
	dir2 := filepath.Join(t.TempDir(), "layout")
	if err := Write(dir2, "docker.io/library/tool:1", images, &epoch); err != nil {
		t.Fatal(err)
	}
	dt2, _ := os.ReadFile(filepath.Join(dir2, "index.json"))
	if string(dt) != string(dt2) {
		t.Error("two writes of the same trees differ")
	}
}
