package llbgen

import (
	"strings"
	"testing"
)

// kernelSegmentOf returns the kernel segment's run in r (nil when there is
// none) and the name of the op its /in comes from, and checks that every
// base segment's run then leaves out that same tree.
func kernelSegmentOf(t *testing.T, r segResult) (string, string) {
	t.Helper()
	var kin, kdigest string
	for d, e := range r.execs {
		if e.GetMeta().GetArgs()[3] != "initrd-kernel-segment" {
			continue
		}
		if kdigest != "" {
			t.Fatal("two kernel segments")
		}
		for _, m := range e.GetMounts() {
			if m.GetDest() == "/in" {
				kin = string(r.ops[d].GetInputs()[m.GetInput()].GetDigest())
			}
		}
		kdigest = d
	}
	for d, e := range r.execs {
		args := strings.Join(e.GetMeta().GetArgs(), " ")
		if !strings.Contains(args, "--format initrd-base-segment") {
			continue
		}
		var excl string
		for _, m := range e.GetMounts() {
			if m.GetDest() == kernelExcludeDir {
				excl = string(r.ops[d].GetInputs()[m.GetInput()].GetDigest())
			}
		}
		switch {
		case kdigest == "" && (excl != "" || strings.Contains(args, "--segment-exclude")):
			t.Errorf("no kernel segment, but the base's run leaves it out: %s", args)
		case kdigest != "" && (excl != kin || !strings.HasSuffix(args, "--segment-exclude "+kernelExcludeDir)):
			t.Errorf("the base's run does not leave out the kernel segment's tree: %s", args)
		}
	}
	return kdigest, r.names[kin]
}

// TestKernelApart: the kernel's modules are a segment of their own,
// written from the kernel's unpacked tarball (relocated when an init
// image's symlink stores them elsewhere), unless an init image, a files
// entry or the apk database is written over one of the kernel's
// non-directories; then they stay in the base's segment, with no warning.
func TestKernelApart(t *testing.T) {
	const unpack = "[kernel] unpack kernel.tar of linuxkit/kernel:6.1"
	for _, tc := range []struct {
		name  string
		init  fakeTree
		extra string // files entries
		want  string // the kernel segment's input; "" for none
	}{
		{name: "apart", init: fakeTree{"sbin/init": "file:i"}, want: unpack},
		{name: "an init image's file in the kernel's lib/", init: fakeTree{"lib/libc.so": "file:c"}, want: unpack},
		{name: "an init image's new file among the modules", init: fakeTree{"lib/modules/6.1/extra.ko": "file:x"}, want: unpack},
		{name: "an init image's boot/ (not in the initrd)", init: fakeTree{"boot/x": "file:x"}, want: unpack},
		{name: "an init image's file over a module file", init: fakeTree{"lib/modules/6.1/modules.dep": "file:other"}},
		{name: "an init image's symlink over a module file", init: fakeTree{"lib/modules/6.1/modules.dep": "link:/x"}},
		{name: "a usr-merged init image: stored through its symlink",
			init: fakeTree{"lib": "link:usr/lib", "usr/lib/libc.so": "file:c"}, want: "kernel (linuxkit/kernel:6.1) modules store /lib -> /usr/lib through symlinks"},
		{name: "a files entry among the modules", init: fakeTree{"sbin/init": "file:i"},
			extra: "  - path: lib/modules/6.1/x.conf\n    contents: x\n", want: unpack},
		{name: "a files directory at the modules' directory", init: fakeTree{"sbin/init": "file:i"},
			extra: "  - path: lib/modules\n    directory: true\n", want: unpack},
		{name: "a files entry over a module file", init: fakeTree{"sbin/init": "file:i"},
			extra: "  - path: lib/modules/6.1/modules.dep\n    contents: x\n"},
		{name: "a files entry over a module file, through the usr-merged symlink",
			init:  fakeTree{"lib": "link:usr/lib", "usr/lib/libc.so": "file:c"},
			extra: "  - path: usr/lib/modules/6.1/modules.dep\n    contents: x\n"},
		{name: "a files directory over a module file", init: fakeTree{"sbin/init": "file:i"},
			extra: "  - path: lib/modules/6.1/modules.dep\n    directory: true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := segBuild(t, tc.extra, "kernel+initrd", tc.init)
			if len(r.warnings) > 0 {
				t.Errorf("warnings %q", r.warnings)
			}
			run, in := kernelSegmentOf(t, r)
			switch {
			case tc.want == "" && run != "":
				t.Errorf("kernel segment from %q, want none", in)
			case tc.want != "" && in != tc.want:
				t.Errorf("kernel segment from %q, want %q", in, tc.want)
			}
		})
	}
}

// TestKernelSegmentCache: the kernel segment's run depends on the
// kernel's tarball only: a change to the command line, an init image or a
// files entry leaves it as it is; a kernel without a tarball has none.
func TestKernelSegmentCache(t *testing.T) {
	init := fakeTree{"sbin/init": "file:i"}
	run, _ := kernelSegmentOf(t, segBuild(t, "", "kernel+initrd", init))
	if run == "" {
		t.Fatal("no kernel segment")
	}
	for name, yml := range map[string]string{
		"cmdline":    strings.Replace(segYAML, "cmdline: console=ttyS0", "cmdline: console=tty0 quiet", 1),
		"init image": strings.Replace(segYAML, "example/init:1", "example/init:2", 1),
		"files":      strings.Replace(segYAML, "contents: hi", "contents: hello", 1),
	} {
		if got, _ := kernelSegmentOf(t, segBuildYAML(t, yml, "kernel+initrd", init)); got != run {
			t.Errorf("%s: the kernel segment's run changed", name)
		}
	}
	yml := strings.Replace(segYAML, "cmdline: console=ttyS0", "cmdline: console=ttyS0\n  tar: none", 1)
	if got, _ := kernelSegmentOf(t, segBuildYAML(t, yml, "kernel+initrd", init)); got != "" {
		t.Error("a kernel without a tarball has a segment")
	}
}
