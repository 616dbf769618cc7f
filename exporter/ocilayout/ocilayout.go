// Package ocilayout writes an OCI image layout (oci-layout, index.json,
// blobs/) of an image from its root filesystem trees, one per platform:
// what LinuxKit puts in a volume of format "oci". Each platform's image is
// re-packed as a single gzip layer of its tree, written deterministically
// (sorted entries, clamped times), so equal trees give equal digests.
package ocilayout

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/lkbuild/lkbuild/exporter/fstree"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one platform of the image.
type Image struct {
	Rootfs string // root filesystem tree
	// Config is the image's OCI config JSON; its platform fields say which
	// platform this is, its rootfs and history are replaced.
	Config []byte
}

// Write writes the layout into dir (created if missing). ref names the
// image in index.json; epoch, if set, clamps every timestamp.
func Write(dir, ref string, images []Image, epoch *time.Time) error {
	if len(images) == 0 {
		return fmt.Errorf("no image to write")
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	var manifests []ocispecs.Descriptor
	for _, img := range images {
		d, err := writeImage(dir, img, epoch)
		if err != nil {
			return err
		}
		manifests = append(manifests, d)
	}
	idx := ocispecs.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispecs.MediaTypeImageIndex, Manifests: manifests}
	d, err := writeJSON(dir, ocispecs.MediaTypeImageIndex, idx)
	if err != nil {
		return err
	}
	d.Annotations = map[string]string{ocispecs.AnnotationRefName: ref, "io.containerd.image.name": ref}
	top := ocispecs.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispecs.MediaTypeImageIndex, Manifests: []ocispecs.Descriptor{d}}
	dt, err := json.Marshal(top)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), dt, 0o644); err != nil {
		return err
	}
	layout, _ := json.Marshal(ocispecs.ImageLayout{Version: ocispecs.ImageLayoutVersion})
	return os.WriteFile(filepath.Join(dir, ocispecs.ImageLayoutFile), layout, 0o644)
}

func writeImage(dir string, img Image, epoch *time.Time) (ocispecs.Descriptor, error) {
	var cfg ocispecs.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		return ocispecs.Descriptor{}, fmt.Errorf("image config: %w", err)
	}
	layer, diffID, err := writeLayer(dir, img.Rootfs, epoch)
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	cfg.RootFS = ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = nil
	if epoch != nil && (cfg.Created == nil || cfg.Created.After(*epoch)) {
		t := epoch.UTC()
		cfg.Created = &t
	}
	cd, err := writeJSON(dir, ocispecs.MediaTypeImageConfig, cfg)
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	m := ocispecs.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispecs.MediaTypeImageManifest,
		Config: cd, Layers: []ocispecs.Descriptor{layer}}
	md, err := writeJSON(dir, ocispecs.MediaTypeImageManifest, m)
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	p := cfg.Platform
	md.Platform = &p
	return md, nil
}

// writeLayer writes the tree as a gzip tar blob and returns its
// descriptor and the digest of the uncompressed tar (the diff id).
func writeLayer(dir, root string, epoch *time.Time) (ocispecs.Descriptor, digest.Digest, error) {
	entries, err := fstree.Walk(root, fstree.Options{})
	if err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	tmp, err := os.CreateTemp(filepath.Join(dir, "blobs", "sha256"), ".layer-")
	if err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobSum, diffSum := sha256.New(), sha256.New()
	counter := &fstree.CountingWriter{W: io.MultiWriter(tmp, blobSum)}
	zw, err := pgzip.NewWriterLevel(counter, pgzip.DefaultCompression)
	if err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffSum))
	if err := writeTar(tw, root, entries, epoch); err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	if err := tw.Close(); err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	d := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: sum(blobSum), Size: counter.N}
	if err := tmp.Close(); err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	if err := os.Rename(tmp.Name(), blobPath(dir, d.Digest)); err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	return d, sum(diffSum), nil
}

func writeTar(tw *tar.Writer, root string, entries []fstree.Entry, epoch *time.Time) error {
	first := map[int]string{}
	for _, e := range entries {
		mt := e.ModTime
		if epoch != nil && mt.After(*epoch) {
			mt = *epoch
		}
		h := &tar.Header{Name: e.Path, Mode: int64(fstree.PermBits(e.Mode)), Uid: int(e.UID), Gid: int(e.GID),
			ModTime: mt.UTC().Truncate(time.Second), Format: tar.FormatPAX}
		switch {
		case e.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
		case e.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Linkname
		case e.Mode&fs.ModeDevice != 0:
			h.Typeflag = tar.TypeBlock
			if e.Mode&fs.ModeCharDevice != 0 {
				h.Typeflag = tar.TypeChar
			}
			h.Devmajor, h.Devminor = int64(fstree.Major(e.Rdev)), int64(fstree.Minor(e.Rdev))
		case e.Mode&fs.ModeNamedPipe != 0:
			h.Typeflag = tar.TypeFifo
		case e.Mode.IsRegular() && e.LinkGroup != 0 && !e.FirstLink:
			h.Typeflag, h.Linkname = tar.TypeLink, first[e.LinkGroup]
		case e.Mode.IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, e.Size
			if e.LinkGroup != 0 {
				first[e.LinkGroup] = e.Path
			}
		default:
			continue // sockets
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			if err := fstree.CopyContents(tw, filepath.Join(root, e.Path), h.Size, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeJSON(dir, mediaType string, v any) (ocispecs.Descriptor, error) {
	dt, err := json.Marshal(v)
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	d := ocispecs.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(dt), Size: int64(len(dt))}
	return d, os.WriteFile(blobPath(dir, d.Digest), dt, 0o644)
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func sum(h hash.Hash) digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
}
