package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// volumesDir holds the top-level volumes of a LinuxKit system, one
// directory each with lower/ (the content), merged/ (what containers bind)
// and, for a writable volume, tmp/.
const volumesDir = containerDir + "/volumes"

// volumeOp is one step of mounting a volume: a directory to create, or a
// mount(2) call.
type volumeOp struct {
	Mkdir string
	Mount *mountStep
}

// planVolume decides how the volume in dir is mounted, as LinuxKit's init
// does: merged/ and lower/ must exist; when tmp/ exists a tmpfs goes on
// tmp/ and an overlay of lower/ with tmp/upper and tmp/work on merged/
// (writes land in memory), otherwise lower/ is bind-mounted read-only on
// merged/. isDir reports whether a path is a directory.
func planVolume(dir string, isDir func(string) bool) ([]volumeOp, error) {
	lower, merged, tmp := filepath.Join(dir, "lower"), filepath.Join(dir, "merged"), filepath.Join(dir, "tmp")
	for _, d := range []string{merged, lower} {
		if !isDir(d) {
			return nil, fmt.Errorf("%s is missing", d)
		}
	}
	if !isDir(tmp) {
		return []volumeOp{
			{Mount: &mountStep{Source: lower, Target: merged, Flags: syscall.MS_BIND}},
			// A first bind mount ignores MS_RDONLY: a remount applies it.
			{Mount: &mountStep{Target: merged, Flags: syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY}},
		}, nil
	}
	upper, work := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work")
	return []volumeOp{
		{Mount: &mountStep{Source: "tmpfs", Target: tmp, FSType: "tmpfs", Data: "mode=755"}},
		{Mkdir: upper},
		{Mkdir: work},
		{Mount: &mountStep{Source: "overlay", Target: merged, FSType: "overlay",
			Data: "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work}},
	}, nil
}

// mountVolumes mounts every volume under /containers/volumes, in sorted
// order, before any container runs.
func mountVolumes() {
	names, err := bundleNames(volumesDir)
	if err != nil {
		logf("%s: %v", volumesDir, err)
		return
	}
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	for _, name := range names {
		ops, err := planVolume(filepath.Join(volumesDir, name), isDir)
		if err == nil {
			err = applyVolumeOps(ops)
		}
		if err != nil {
			logf("volume %s: %v", name, err)
			continue
		}
		logf("volume %s mounted", name)
	}
}

func applyVolumeOps(ops []volumeOp) error {
	for _, op := range ops {
		if op.Mkdir != "" {
			if err := os.MkdirAll(op.Mkdir, 0o755); err != nil {
				return err
			}
			continue
		}
		s := op.Mount
		if err := syscall.Mount(s.Source, s.Target, s.FSType, s.Flags, s.Data); err != nil {
			return fmt.Errorf("mount %q on %s (type %q, options %q): %w", s.Source, s.Target, s.FSType, s.Data, err)
		}
	}
	return nil
}
