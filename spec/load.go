package spec

import "fmt"

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
			// Resolved once: Bundles uses what Check resolved.
			resolved, err := resolveVolumes(img, vols)
			if err != nil {
				errs.errs = append(errs.errs, err.(*Error))
			}
			img.resolved = resolved
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
