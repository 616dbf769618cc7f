package spec

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (c *Config) volumes() map[string]*Volume {
	m := map[string]*Volume{}
	for _, v := range c.Volumes {
		m[v.Name] = v
	}
	return m
}

// VolumeDir is where a volume lives in the root filesystem; containers
// see it through VolumeDir/merged.
func VolumeDir(name string) string { return path.Join("containers/volumes", name) }

// withVolumes returns img with its volume references resolved: what Check
// resolved when it checked the configuration, else resolved now.
func (img *Image) withVolumes(vols map[string]*Volume) (*Image, error) {
	if img.resolved != nil {
		return img.resolved, nil
	}
	return resolveVolumes(img, vols)
}

// resolveVolumes returns a copy of img whose binds, binds.add and bind
// mounts name volumes by their merged directory. A source that does not
// start with "/" must name a volume; a read-only volume must be bound
// read-only ("ro" as the bind's option, or a mount option). The error is
// an *Error at the bind or mount.
func resolveVolumes(img *Image, vols map[string]*Volume) (*Image, error) {
	out := *img
	out.resolved = nil
	lookup := func(rel, name string, ro bool) (string, error) {
		v, ok := vols[name]
		if !ok {
			return "", img.errorAt(rel, "volume %q is not defined in volumes", name)
		}
		if v.ReadOnly && !ro {
			return "", img.errorAt(rel, "volume %q is read-only, but is mounted read-write (mount it with ro)", name)
		}
		return "/" + path.Join(VolumeDir(name), "merged"), nil
	}
	binds := func(list *[]string, key string) (*[]string, error) {
		if list == nil {
			return nil, nil
		}
		res := make([]string, len(*list))
		for i, s := range *list {
			b, _ := ParseBind(s)
			if strings.HasPrefix(b.Source, "/") {
				res[i] = s
				continue
			}
			dir, err := lookup(fmt.Sprintf("%s[%d]", key, i), b.Source, b.ReadOnly())
			if err != nil {
				return nil, err
			}
			res[i] = withSource(s, dir)
		}
		return &res, nil
	}
	var err error
	if out.Binds, err = binds(img.Binds, "binds"); err != nil {
		return nil, err
	}
	if out.BindsAdd, err = binds(img.BindsAdd, "binds.add"); err != nil {
		return nil, err
	}
	if img.Mounts != nil {
		mounts := append([]specs.Mount(nil), (*img.Mounts)...)
		for i, m := range mounts {
			if m.Type != "bind" || strings.HasPrefix(m.Source, "/") {
				continue
			}
			ro := false
			for _, o := range m.Options {
				if o == "rw" || o == "ro" {
					ro = o == "ro"
					break
				}
			}
			if mounts[i].Source, err = lookup(fmt.Sprintf("mounts[%d].source", i), m.Source, ro); err != nil {
				return nil, err
			}
		}
		out.Mounts = &mounts
	}
	return &out, nil
}
