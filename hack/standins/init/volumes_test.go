package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestPlanVolume(t *testing.T) {
	v := "/containers/volumes/data"
	dirs := func(ds ...string) func(string) bool {
		return func(p string) bool {
			for _, d := range ds {
				if p == v+"/"+d {
					return true
				}
			}
			return false
		}
	}

	got, err := planVolume(v, dirs("lower", "tmp", "merged"))
	if err != nil {
		t.Fatal(err)
	}
	want := []volumeOp{
		{Mount: &mountStep{Source: "tmpfs", Target: v + "/tmp", FSType: "tmpfs", Data: "mode=755"}},
		{Mkdir: v + "/tmp/upper"},
		{Mkdir: v + "/tmp/work"},
		{Mount: &mountStep{Source: "overlay", Target: v + "/merged", FSType: "overlay",
			Data: "lowerdir=" + v + "/lower,upperdir=" + v + "/tmp/upper,workdir=" + v + "/tmp/work"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writable volume:\n got %s\nwant %s", showOps(got), showOps(want))
	}

	got, err = planVolume(v, dirs("lower", "merged"))
	if err != nil {
		t.Fatal(err)
	}
	want = []volumeOp{
		{Mount: &mountStep{Source: v + "/lower", Target: v + "/merged", Flags: syscall.MS_BIND}},
		{Mount: &mountStep{Target: v + "/merged", Flags: syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read-only volume:\n got %s\nwant %s", showOps(got), showOps(want))
	}

	for _, tc := range []struct {
		have    []string
		missing string
	}{
		{[]string{"lower", "tmp"}, "/merged"},
		{[]string{"merged", "tmp"}, "/lower"},
		{nil, "/merged"},
	} {
		_, err := planVolume(v, dirs(tc.have...))
		if err == nil || !strings.Contains(err.Error(), v+tc.missing+" is missing") {
			t.Errorf("planVolume with %v: err = %v, want %s missing", tc.have, err, tc.missing)
		}
	}
}

// TestPlanVolumeOnDisk checks the real directory test and the order in which
// volumes are found, without mounting anything.
func TestPlanVolumeOnDisk(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"b/lower", "b/merged", "a/lower", "a/merged", "a/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	names, err := bundleNames(root)
	if err != nil || !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Fatalf("volumes = %v, %v", names, err)
	}
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	if ops, err := planVolume(filepath.Join(root, "a"), isDir); err != nil || len(ops) != 4 || ops[0].Mount.FSType != "tmpfs" {
		t.Errorf("a (with tmp/): %s, %v", showOps(ops), err)
	}
	if ops, err := planVolume(filepath.Join(root, "b"), isDir); err != nil || len(ops) != 2 || ops[0].Mount.Flags != syscall.MS_BIND {
		t.Errorf("b (no tmp/): %s, %v", showOps(ops), err)
	}
}

func showOps(ops []volumeOp) string {
	var s []string
	for _, op := range ops {
		if op.Mount != nil {
			m := op.Mount
			s = append(s, fmt.Sprintf("mount %s -> %s (type %q, flags %#x, data %q)", m.Source, m.Target, m.FSType, m.Flags, m.Data))
		} else {
			s = append(s, "mkdir "+op.Mkdir)
		}
	}
	return "[" + strings.Join(s, "; ") + "]"
}
