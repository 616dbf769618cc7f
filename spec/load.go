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
	cfg, err := parseAndMerge(files)
	if err != nil {
		return nil, err
	}
	if err := Check(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseAndMerge parses each file and merges them in order (Load without
// Check).
func parseAndMerge(files []Source) (*Config, error) {
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
	return cfg, nil
}

// Check validates what spans files: unique service and volume names, the
// paths of files entries, user and group names, and the volume references
// of binds and bind mounts. Errors name each value's position and field
// path in its own file.
func Check(cfg *Config) error {
	errs := &errorList{}
	checkUnique(cfg, errs)
	checkFilePaths(cfg, errs)
	ids := IDs(cfg)
	checkID := func(l Loc, rel string, id *ID) {
		if _, err := ResolveID(id, ids); err != nil {
			l.errorf(errs, rel, "%v", err)
		}
	}
	for _, f := range cfg.Files {
		checkID(f.Loc, "uid", f.UID)
		checkID(f.Loc, "gid", f.GID)
	}
	vols := cfg.volumes()
	for _, s := range cfg.sections() {
		for _, img := range s.images {
			checkID(img.Loc, "uid", img.UID)
			checkID(img.Loc, "gid", img.GID)
			if img.AdditionalGids != nil {
				for i := range *img.AdditionalGids {
					checkID(img.Loc, fmt.Sprintf("additionalGids[%d]", i), &(*img.AdditionalGids)[i])
				}
			}
			if _, err := resolveVolumes(img, vols); err != nil {
				errs.errs = append(errs.errs, err.(*Error))
			}
		}
	}
	return errs.err()
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
// read-only ("ro" as the bind's option, or a mount option). The error is
// an *Error at the bind or mount.
func resolveVolumes(img *Image, vols map[string]*Volume) (*Image, error) {
	out := *img
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
		for i, b := range *list {
			parts := strings.Split(b, ":")
			if strings.HasPrefix(parts[0], "/") {
				res[i] = b
				continue
			}
			dir, err := lookup(fmt.Sprintf("%s[%d]", key, i), parts[0], len(parts) > 2 && parts[2] == "ro")
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
			if mounts[i].Source, err = lookup(fmt.Sprintf("mounts[%d].source", i), m.Source, ro); err != nil {
				return nil, err
			}
		}
		out.Mounts = &mounts
	}
	return &out, nil
}
