package spec

import (
	"encoding/json"
	"fmt"
	"path"

	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Bundle is one runc bundle to place in the root filesystem.
type Bundle struct {
	Section  string // "onboot", "onshutdown" or "services"
	Name     string
	Dir      string // e.g. containers/onboot/000-dhcpcd (no leading slash)
	Image    string // image ref as written in the YAML
	Readonly bool   // image in Dir/rootfs; else in Dir/lower with empty Dir/tmp and Dir/rootfs
	// Shared is set when an earlier bundle already holds the same image:
	// the directory (rootfs or lower of that bundle) this one mounts
	// instead of a copy of its own, as LinuxKit extracts an image once.
	Shared  string
	Config  []byte // config.json
	Runtime []byte // runtime.json
	Pos     Pos    // the YAML entry
}

// entry is a container entry with the directory of its bundle.
type entry struct {
	section string
	img     *Image
	dir     string // containers/SECTION/NAME, numbered NNN-NAME in onboot and onshutdown
}

// entries lists the container entries in LinuxKit's order (onboot,
// onshutdown, services), each with its bundle directory.
func (c *Config) entries() []entry {
	var out []entry
	for _, s := range c.sections() {
		for i, img := range s.images {
			dir := path.Join("containers", s.name, img.Name)
			if s.name != "services" {
				dir = path.Join("containers", s.name, fmt.Sprintf("%03d-%s", i, img.Name))
			}
			out = append(out, entry{section: s.name, img: img, dir: dir})
		}
	}
	return out
}

// bundler makes the bundles of one configuration: it holds what they
// share.
type bundler struct {
	ids       map[string]uint32
	vols      map[string]*Volume
	labels    labelCache
	extracted map[string]string // normalized ref -> the directory holding the image
}

func newBundler(cfg *Config) *bundler {
	return &bundler{ids: IDs(cfg), vols: cfg.volumes(), labels: labelCache{}, extracted: map[string]string{}}
}

// Bundles generates every bundle in LinuxKit's order. imageConfigs is
// keyed by the image ref as written in the YAML.
func Bundles(cfg *Config, imageConfigs map[string]ImageConfig) ([]Bundle, error) {
	b := newBundler(cfg)
	var out []Bundle
	for _, e := range cfg.entries() {
		bundle, err := b.bundle(e, imageConfigs[e.img.Image])
		if err != nil {
			return nil, err
		}
		out = append(out, bundle)
	}
	return out, nil
}

// bundle makes the bundle of entry e from its image's config ic.
func (b *bundler) bundle(e entry, ic ImageConfig) (Bundle, error) {
	if p := nameProblem(e.img.Name, e.section); p != "" {
		return Bundle{}, e.img.errorAt("name", "%s", p)
	}
	oci, rt, err := b.configs(e.img, ic)
	if err != nil {
		return Bundle{}, err
	}
	readonly := oci.Root.Readonly
	imgDir, shared := b.imageDir(e, readonly)
	rt.Mounts = ptr(append(rootfsMounts(e.dir, imgDir, readonly), *rt.Mounts...))
	config, err := json.MarshalIndent(oci, "", "    ")
	if err != nil {
		return Bundle{}, err
	}
	runtime, err := json.MarshalIndent(rt, "", "    ")
	if err != nil {
		return Bundle{}, err
	}
	return Bundle{Section: e.section, Name: e.img.Name, Dir: e.dir, Image: e.img.Image,
		Readonly: readonly, Shared: shared, Config: config, Runtime: runtime, Pos: e.img.Pos}, nil
}

// configs returns the contents of an entry's config.json and runtime.json
// (without the mounts of its rootfs): its volume references resolved, then
// ConfigToOCI. An error is at the entry.
func (b *bundler) configs(img *Image, ic ImageConfig) (specs.Spec, Runtime, error) {
	img, err := img.withVolumes(b.vols)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	oci, rt, err := configToOCI(img, ic, b.ids, b.labels)
	if err != nil {
		return specs.Spec{}, Runtime{}, img.errorAt("image", "%s: %v", img.Image, err)
	}
	return oci, rt, nil
}

// imageDir returns the directory that holds entry e's image: its rootfs
// (read-only) or lower (writable) directory, or, when an earlier bundle
// holds the same image, that bundle's directory, which is also returned as
// shared.
func (b *bundler) imageDir(e entry, readonly bool) (imgDir, shared string) {
	imgDir = path.Join(e.dir, "rootfs")
	if !readonly {
		imgDir = path.Join(e.dir, "lower")
	}
	key := normalizedRef(e.img.Image)
	if dir, dup := b.extracted[key]; dup {
		return dir, dir
	}
	b.extracted[key] = imgDir
	return imgDir, ""
}

// rootfsMounts are the runtime mounts that make a bundle's rootfs/ from
// the image in imgDir: a bind for read-only containers (of itself, as runc
// wants a mount point, or of the bundle that holds the image), a tmpfs upper
// and an overlay on imgDir for writable ones.
func rootfsMounts(dir, imgDir string, readonly bool) []specs.Mount {
	root := "/" + path.Join(dir, "rootfs")
	if readonly {
		return []specs.Mount{{Source: "/" + imgDir, Destination: root, Options: []string{"bind"}}}
	}
	tmp := "/" + path.Join(dir, "tmp")
	return []specs.Mount{
		{Source: "tmpfs", Type: "tmpfs", Destination: tmp},
		{Destination: tmp, Options: []string{"remount", "private"}},
		{Source: "overlay", Type: "overlay", Destination: root, Options: []string{
			"lowerdir=/" + imgDir, "upperdir=" + path.Join(tmp, "upper"), "workdir=" + path.Join(tmp, "work"),
		}},
	}
}

// normalizedRef is the key under which an image is extracted once:
// "busybox" and "docker.io/library/busybox:latest" are the same image.
func normalizedRef(ref string) string {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		return reference.TagNameOnly(n).String()
	}
	return ref
}
