package llbgen

import (
	"context"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
)

// TestFilesOverImageSymlink: a files entry whose own path is a symlink an
// image provides replaces the symlink (as LinuxKit's tar does) instead of
// writing into its target: bin/ls -> busybox must not overwrite busybox.
// A directory entry there is refused at its path.
func TestFilesOverImageSymlink(t *testing.T) {
	tree := fakeTree{"bin/busybox": "file:bb", "bin/ls": "link:/bin/busybox", "bin/sh": "link:busybox"}
	build := func(files string) ([]string, error) {
		cfg, err := spec.Parse("x.yml", []byte("kernel:\n  image: linuxkit/kernel:6.1\ninit:\n  - example/init:1\nfiles:\n"+files))
		if err != nil {
			t.Fatal(err)
		}
		o := options(&fakeResolver{})
		o.Target = "tar"
		o.Reader = fakeReader{"[kernel] extract linuxkit/kernel:6.1": kernelTree, "[init] extract example/init:1": tree}
		res, err := Build(context.Background(), cfg, o)
		if err != nil {
			return nil, err
		}
		var rms []string
		for _, op := range ops(t, res.Rootfs) {
			for _, a := range op.GetFile().GetActions() {
				if rm := a.GetRm(); rm != nil {
					rms = append(rms, rm.GetPath())
				}
			}
		}
		return rms, nil
	}
	for _, tc := range []struct{ files, rm string }{
		{"  - path: bin/ls\n    contents: \"#!/bin/sh\"\n    mode: \"0755\"\n", "/bin/ls"},
		{"  - path: bin/sh\n    metadata: yaml\n", "/bin/sh"},
		{"  - path: bin/busybox\n    contents: x\n", ""},
		{"  - path: bin/new\n    contents: x\n", ""},
	} {
		rms, err := build(tc.files)
		if err != nil {
			t.Fatalf("%q: %v", tc.files, err)
		}
		if got := strings.Join(rms, ","); got != tc.rm {
			t.Errorf("%q: removes %q before writing, want %q", tc.files, got, tc.rm)
		}
	}
	_, err := build("  - path: bin/ls\n    directory: true\n")
	want := "x.yml:6:11: files[0].path: /bin/ls is a symlink to /bin/busybox that init[0] (example/init:1) provides; a directory entry there is ambiguous (replace the symlink, or write through it?): write the path it leads to, /bin/busybox"
	if err == nil || err.Error() != want {
		t.Errorf("directory over a symlink: %v\nwant %s", err, want)
	}
}
