package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// IDs allocates the uid/gid of every container by name, from 100 in
// LinuxKit's order (onboot, onshutdown, services), for names used as
// uid, gid or additionalGids.
func IDs(cfg *Config) map[string]uint32 {
	ids := map[string]uint32{}
	id := uint32(100)
	for _, list := range [][]*Image{cfg.Onboot, cfg.Onshutdown, cfg.Services} {
		for _, img := range list {
			ids[img.Name] = id
			id++
		}
	}
	return ids
}

// ResolveID turns an ID into a number: nil, "" and "root" are 0, other
// names are looked up in ids.
func ResolveID(id *ID, ids map[string]uint32) (uint32, error) {
	if id == nil {
		return 0, nil
	}
	if !id.IsName {
		return id.Number, nil
	}
	if id.Name == "" || id.Name == "root" {
		return 0, nil
	}
	if n, ok := ids[id.Name]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("cannot find id %q (not a container name)", id.Name)
}

// processUser is the process's uid, gid and additional gids, the YAML's
// else the label's, names resolved with ids. A name the YAML gives was
// checked with the whole configuration (Check); one from the label is
// checked here, and its error gives its place in the label (labelLoc).
func processUser(label, y *Overrides, labelLoc Loc, ids map[string]uint32) (specs.User, error) {
	resolve := func(rel string, label, yaml *ID) (uint32, error) {
		n, err := ResolveID(pickID(label, yaml), ids)
		if err != nil && yaml == nil {
			return 0, labelError(Errors{labelLoc.errorAt(rel, "%v", err)})
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", rel, err)
		}
		return n, nil
	}
	uid, err := resolve("uid", label.UID, y.UID)
	if err != nil {
		return specs.User{}, err
	}
	gid, err := resolve("gid", label.GID, y.GID)
	if err != nil {
		return specs.User{}, err
	}
	var groups []uint32
	agids := label.AdditionalGids
	if y.AdditionalGids != nil {
		agids = y.AdditionalGids
	}
	if agids != nil {
		for i, g := range *agids {
			var fromYAML *ID
			if y.AdditionalGids != nil {
				fromYAML = &g
			}
			n, err := resolve(fmt.Sprintf("additionalGids[%d]", i), &g, fromYAML)
			if err != nil {
				return specs.User{}, err
			}
			groups = append(groups, n)
		}
	}
	return specs.User{UID: uid, GID: gid, AdditionalGids: groups}, nil
}
