package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lkbuild/lkbuild/hack/parity"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// padding is how much executable-like data the stand-ins carry.
type padding struct {
	Image  int // bytes in every image but the kernel, as a layer of its own
	Kernel int // bytes added to the kernel image's kernel.tar, as modules
}

// key names a padding in the registry: images of different paddings (or
// of another padding generator) never share a name.
func (p padding) key() string {
	return fmt.Sprintf("%s-%s-%s", padVersion, sizeName(p.Image), sizeName(p.Kernel))
}

// sizeName writes a size in MiB when it is a whole number of them, else in
// KiB or bytes: 48m, 512k, 1000b.
func sizeName(n int) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dm", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprintf("%db", n)
}

// imageParts are the shares (in percent) of an image's padding held by each
// of its padding files: a few big programs and libraries, then smaller ones.
var imageParts = []int{25, 17, 13, 10, 8, 7, 6, 5, 4, 3, 2}

// moduleSizes are the sizes the kernel's padding modules cycle through.
var moduleSizes = []int{48 << 10, 96 << 10, 160 << 10, 256 << 10, 640 << 10, 1 << 20}

// padImage returns a copy of the stand-in img, named ref, with padding:
// the kernel image's kernel.tar gets p.Kernel bytes of modules below
// lib/modules/<version>/kernel/bench/, any other image a top layer of
// p.Image bytes in files below usr/libexec/<program>-bench/. seed decides
// the bytes: the same seed gives the same image.
func padImage(img *parity.Image, ref string, kernel bool, p padding, seed string) (*parity.Image, error) {
	edit := func(layers [][]byte) ([][]byte, error) {
		if kernel {
			if len(layers) != 1 {
				return nil, fmt.Errorf("kernel stand-in %s has %d layers, want 1", img.Ref, len(layers))
			}
			l, err := padKernelLayer(layers[0], p.Kernel, seed)
			return [][]byte{l}, err
		}
		prog := path.Base(strings.SplitN(path.Base(ref), ":", 2)[0])
		return append(layers, padLayer(prog, p.Image, seed)), nil
	}
	return rebuild(img, ref, edit)
}

// padLayer is a layer of n bytes of padding in files below
// usr/libexec/<prog>-bench/ (executables, sized by imageParts).
func padLayer(prog string, n int, seed string) []byte {
	dir := "usr/libexec/" + prog + "-bench/"
	ents := []entry{{name: "usr/", dir: true}, {name: "usr/libexec/", dir: true}, {name: dir, dir: true}}
	g := newPadGen(seed)
	left := n
	for i, share := range imageParts {
		size := n * share / 100
		if i == len(imageParts)-1 {
			size = left
		}
		left -= size
		ents = append(ents, entry{name: fmt.Sprintf("%s%s-%02d", dir, prog, i), mode: 0o755, body: g.fill(size)})
	}
	return writeTar(ents)
}

// padKernelLayer rewrites the kernel stand-in's layer: its kernel.tar gets
// n bytes of modules (sizes cycling through moduleSizes) in
// ./lib/modules/<version>/kernel/bench/NN/, 64 to a directory.
func padKernelLayer(layer []byte, n int, seed string) ([]byte, error) {
	var out []entry
	found := false
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("kernel stand-in layer: %w", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if h.Name == "kernel.tar" {
			if body, err = padKernelTar(body, n, seed); err != nil {
				return nil, err
			}
			found = true
		}
		out = append(out, entry{name: h.Name, dir: h.Typeflag == tar.TypeDir, mode: h.Mode, body: body})
	}
	if !found {
		return nil, errors.New("kernel stand-in has no kernel.tar")
	}
	return writeTar(out), nil
}

// padKernelTar appends the padding modules to a kernel.tar whose modules
// live in ./lib/modules/<version>/.
func padKernelTar(ktar []byte, n int, seed string) ([]byte, error) {
	var ents []entry
	ver := ""
	tr := tar.NewReader(bytes.NewReader(ktar))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("kernel.tar: %w", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(h.Name, "./lib/modules/"); ok && ver == "" && strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, "/") {
			ver = strings.TrimSuffix(rest, "/")
		}
		if h.Typeflag == tar.TypeSymlink {
			ents = append(ents, entry{name: h.Name, link: h.Linkname})
			continue
		}
		ents = append(ents, entry{name: h.Name, dir: h.Typeflag == tar.TypeDir, mode: h.Mode, body: body})
	}
	if ver == "" {
		return nil, errors.New("kernel.tar has no ./lib/modules/<version>/")
	}
	base := "./lib/modules/" + ver + "/kernel/bench/"
	ents = append(ents, entry{name: base, dir: true})
	g := newPadGen(seed)
	for i, left := 0, n; left > 0; i++ {
		if i%64 == 0 {
			ents = append(ents, entry{name: fmt.Sprintf("%s%02d/", base, i/64), dir: true})
		}
		size := min(moduleSizes[i%len(moduleSizes)], left)
		left -= size
		ents = append(ents, entry{name: fmt.Sprintf("%s%02d/bench%04d.ko", base, i/64, i), mode: 0o644, body: g.fill(size)})
	}
	return writeTar(ents), nil
}

// entry is one member of a tar archive written by writeTar.
type entry struct {
	name string
	dir  bool
	mode int64
	link string // symlink target
	body []byte
}

// writeTar writes the entries with the stand-ins' fixed time, owned by
// root (directories 0755).
func writeTar(ents []entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Size: int64(len(e.body)), ModTime: parity.ImageTime, Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Mode, h.Linkname, h.Size = tar.TypeSymlink, 0o777, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("padding tar %s: %v", e.name, err)) // only a bug gets here: the headers are ours
		}
		_, _ = tw.Write(e.body)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// rebuild returns img named ref with its layers replaced by edit (given the
// layers of its first manifest, bottom first; every manifest of a stand-in
// has the same ones): new configs (diff ids), manifests and index.
// Layers are uncompressed, as parity's stand-ins, so a digest never
// depends on a compressor.
func rebuild(img *parity.Image, ref string, edit func([][]byte) ([][]byte, error)) (*parity.Image, error) {
	var index ocispecs.Index
	if err := json.Unmarshal(img.Index, &index); err != nil {
		return nil, fmt.Errorf("%s: index: %w", img.Ref, err)
	}
	out := &parity.Image{Ref: ref, Blobs: map[digest.Digest][]byte{}}
	add := func(mt string, dt []byte) ocispecs.Descriptor {
		d := digest.FromBytes(dt)
		out.Blobs[d] = dt
		return ocispecs.Descriptor{MediaType: mt, Digest: d, Size: int64(len(dt))}
	}
	var layers []ocispecs.Descriptor
	var diffIDs []digest.Digest
	for i, md := range index.Manifests {
		var m ocispecs.Manifest
		if err := json.Unmarshal(img.Blobs[md.Digest], &m); err != nil {
			return nil, fmt.Errorf("%s: manifest: %w", img.Ref, err)
		}
		var cfg ocispecs.Image
		if err := json.Unmarshal(img.Blobs[m.Config.Digest], &cfg); err != nil {
			return nil, fmt.Errorf("%s: config: %w", img.Ref, err)
		}
		if i == 0 {
			var old [][]byte
			for _, l := range m.Layers {
				old = append(old, img.Blobs[l.Digest])
			}
			edited, err := edit(old)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", img.Ref, err)
			}
			for _, l := range edited {
				d := add(ocispecs.MediaTypeImageLayer, l)
				layers = append(layers, d)
				diffIDs = append(diffIDs, d.Digest)
			}
		}
		cfg.RootFS.DiffIDs = diffIDs
		cdt, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		m.Config = add(ocispecs.MediaTypeImageConfig, cdt)
		m.Layers = layers
		mdt, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		d := add(ocispecs.MediaTypeImageManifest, mdt)
		d.Platform = md.Platform
		index.Manifests[i] = d
	}
	var err error
	out.Index, err = json.Marshal(index)
	return out, err
}

var errNoKernel = errors.New("linuxkit.yml names no kernel image")

// imageSet is the padded stand-ins of linuxkit.yml: every image it names,
// under <registry>/bench/<padding key>/ with the repository path parity's
// rewrite gives (library/ for Docker Hub's official images).
type imageSet struct {
	registry string
	pad      padding
	uses     []parity.ImageUse // parity's names and roles
	yamlSrc  []byte
}

func newImageSet(work, registry string, pad padding) (*imageSet, error) {
	dir := filepath.Join(work, "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "linuxkit.yml"), linuxkitYML, 0o644); err != nil {
		return nil, err
	}
	uses, err := parity.Images([]parity.Input{parity.NewInput(dir, "linuxkit.yml")})
	if err != nil {
		return nil, err
	}
	kernel := false
	for _, u := range uses {
		kernel = kernel || u.Roles[parity.RoleKernel]
	}
	if !kernel {
		return nil, errNoKernel
	}
	return &imageSet{registry: registry, pad: pad, uses: uses, yamlSrc: linuxkitYML}, nil
}

// prefix is the namespace of the set's images in a registry.
func (s *imageSet) prefix() string { return "bench/" + s.pad.key() + "/" }

// name returns the name under host of the image parity calls ref; variant
// k > 0 gets the tag <tag>-v<k>.
func (s *imageSet) name(host, ref string, k int) string {
	n := host + "/" + s.prefix() + strings.TrimPrefix(ref, parity.Namespace)
	if k > 0 {
		if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
			n += fmt.Sprintf("-v%d", k)
		} else {
			n += fmt.Sprintf(":latest-v%d", k)
		}
	}
	return n
}

// push pushes every padded stand-in and variants 1..variants of the image
// the YAML names as svcRef; it returns how many images that is. Pushing
// what the registry already has changes nothing (see parity.Push).
func (s *imageSet) push(ctx context.Context, svcRef string, variants int) (int, error) {
	svc := parity.Rewrite(svcRef)
	n := 0
	for _, u := range s.uses {
		base, err := parity.StandIn(u.Ref, u.Roles)
		if err != nil {
			return n, err
		}
		ks := []int{0}
		if u.Ref == svc {
			for k := 1; k <= variants; k++ {
				ks = append(ks, k)
			}
		}
		for _, k := range ks {
			name := s.name(s.registry, u.Ref, k)
			img, err := padImage(base, name, u.Roles[parity.RoleKernel], s.pad, strings.TrimPrefix(name, s.registry+"/"))
			if err != nil {
				return n, err
			}
			if err := parity.Push(ctx, img); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// writeYAML writes linuxkit.yml with its images named under host and the
// service image svcRef as variant k (0: the original), plus the bench's
// files entry.
func (s *imageSet) writeYAML(file, host, svcRef string, k int) error {
	out, err := rewriteYAML(s.yamlSrc, func(ref string) (string, error) {
		r := parity.Rewrite(ref)
		if !strings.HasPrefix(r, parity.Namespace) {
			return "", fmt.Errorf("image %q: not a name the bench can stand in for", ref)
		}
		v := 0
		if ref == svcRef {
			v = k
		}
		return s.name(host, r, v), nil
	})
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o644)
}
