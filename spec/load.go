package spec

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Source is one LinuxKit YAML file: its name (as shown in errors) and data.
type Source struct {
	Filename string
	Data     []byte
}

// Load parses the files in order and merges them as `linuxkit build a.yml
// b.yml` does: later non-empty kernel fields win and lists append. The
// merged configuration is then checked as a whole (service and volume
// names unique across files, every volume reference defined and used
// within its read-only rule).
func Load(files ...Source) (*Config, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("no LinuxKit YAML file given")
	}
	var cfg *Config
	for _, f := range files {
		c, err := Parse(f.Filename, f.Data)
		if err != nil {
			return nil, err
		}
		if cfg == nil {
			cfg = c
		} else {
			cfg = Merge(cfg, c)
		}
	}
	if err := Check(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Check validates what spans files: unique service and volume names and
// the volume references of binds and bind mounts.
func Check(cfg *Config) error {
	errs := &errorList{}
	names := map[string]bool{}
	for i, img := range cfg.Services {
		if names[img.Name] {
			errs.add(img.Pos, fmt.Sprintf("services[%d].name", i), "duplicate service name %q", img.Name)
		}
		names[img.Name] = true
	}
	vols := map[string]bool{}
	for i, v := range cfg.Volumes {
		if vols[v.Name] {
			errs.add(v.Pos, fmt.Sprintf("volumes[%d].name", i), "duplicate volume name %q", v.Name)
		}
		vols[v.Name] = true
	}
	ids := IDs(cfg)
	for i, f := range cfg.Files {
		for _, id := range []struct {
			key string
			id  *ID
		}{{"uid", f.UID}, {"gid", f.GID}} {
			if _, err := ResolveID(id.id, ids); err != nil {
				errs.add(f.Pos, fmt.Sprintf("files[%d].%s", i, id.key), "%v", err)
			}
		}
	}
	if err := errs.err(); err != nil {
		return err
	}
	for _, s := range cfg.sections() {
		for i, img := range s.images {
			if _, err := resolveVolumes(img, cfg.volumes(), fmt.Sprintf("%s[%d]", s.name, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

type section struct {
	name   string
	images []*Image
}

// sections are the container sections in LinuxKit's order.
func (c *Config) sections() []section {
	return []section{{"onboot", c.Onboot}, {"onshutdown", c.Onshutdown}, {"services", c.Services}}
}

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

// resolveVolumes returns a copy of img whose binds, binds.add and bind
// mounts name volumes by their merged directory. A source that does not
// start with "/" must name a volume; a read-only volume must be bound
// read-only ("ro" as the bind's option, or a mount option).
func resolveVolumes(img *Image, vols map[string]*Volume, field string) (*Image, error) {
	out := *img
	fail := func(f, format string, args ...any) error {
		return &Error{File: img.Pos.File, Line: img.Pos.Line, Col: img.Pos.Col, Field: f, Msg: fmt.Sprintf(format, args...)}
	}
	lookup := func(f, name string, ro bool) (string, error) {
		v, ok := vols[name]
		if !ok {
			return "", fail(f, "volume %q is not defined in volumes", name)
		}
		if v.ReadOnly && !ro {
			return "", fail(f, "volume %q is read-only, but is mounted read-write (mount it with ro)", name)
		}
		return "/" + path.Join(VolumeDir(name), "merged"), nil
	}
	binds := func(list *[]string, key string) (*[]string, error) {
		if list == nil {
			return nil, nil
		}
		res := make([]string, len(*list))
		for i, b := range *list {
			parts := strings.Split(b, ":")
			if strings.HasPrefix(parts[0], "/") {
				res[i] = b
				continue
			}
			dir, err := lookup(fmt.Sprintf("%s.%s[%d]", field, key, i), parts[0], len(parts) > 2 && parts[2] == "ro")
			if err != nil {
				return nil, err
			}
			parts[0] = dir
			res[i] = strings.Join(parts, ":")
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
			if mounts[i].Source, err = lookup(fmt.Sprintf("%s.mounts[%d]", field, i), m.Source, ro); err != nil {
				return nil, err
			}
		}
		out.Mounts = &mounts
	}
	return &out, nil
}
