package llbgen

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

const segYAML = `
kernel:
  image: linuxkit/kernel:6.1
  cmdline: console=ttyS0
init:
  - example/init:1
onboot:
  - name: a
    image: busybox:1.36
services:
  - name: b
    image: example/b:1
volumes:
  - name: v
files:
  - path: etc/motd
    contents: hi
`

// segBuild builds yaml (segYAML with extra appended) for target with the
// init image's tree init, and returns the exec ops' names and args by
// digest, the warnings, and the artifact's exec.
type segResult struct {
	warnings []string
	names    map[string]string // op digest -> custom name
	execs    map[string]*pb.ExecOp
	ops      map[string]*pb.Op
	artifact *pb.Op
}

func segBuild(t *testing.T, extra, target string, init fakeTree) segResult {
	t.Helper()
	return segBuildYAML(t, segYAML+extra, target, init)
}

// segBuildYAML is segBuild for a whole YAML.
func segBuildYAML(t *testing.T, yml, target string, init fakeTree) segResult {
	t.Helper()
	cfg, err := spec.Parse("x.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	o := options(&fakeResolver{})
	o.Target = target
	o.Reader = fakeReader{
		"[kernel] extract linuxkit/kernel:6.1": kernelTree,
		"[init] extract example/init:1":        init,
		"[services b] extract example/b:1":     {"containers/services/b/config.json": "file:{}", "containers/services/b/rootfs/etc/passwd": "file:p"},
	}
	var r segResult
	o.Warn = func(w Warning) { r.warnings = append(r.warnings, w.String()) }
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	def, err := res.Output.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.names, r.execs, r.ops = map[string]string{}, map[string]*pb.ExecOp{}, map[string]*pb.Op{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		d := digestOfBytes(dt)
		r.names[d] = def.Metadata[digestOf(d)].Description["llb.customname"]
		r.ops[d] = &op
		if e := op.GetExec(); e != nil {
			r.execs[d] = e
			if strings.Contains(strings.Join(e.GetMeta().GetArgs(), " "), "--format "+target) {
				r.artifact = &op
			}
		}
	}
	if r.artifact == nil {
		t.Fatal("no mkimage run for the target")
	}
	return r
}

// mountNames returns, for each mount of the artifact's run, the name of
// the op that produces it.
func (r segResult) mountNames() map[string]string {
	out := map[string]string{}
	for _, m := range r.artifact.GetExec().GetMounts() {
		if m.GetInput() < 0 {
			continue
		}
		out[m.GetDest()] = r.names[string(r.artifact.GetInputs()[m.GetInput()].GetDigest())]
	}
	return out
}

// TestSegmentedGraph: kernel+initrd is written from the kernel's segment,
// one segment per bundle and volume, in the merge's order, then the
// base's; its /in is the base (kernel, init, files), never the whole
// merged tree.
func TestSegmentedGraph(t *testing.T) {
	r := segBuild(t, "", "kernel+initrd", fakeTree{"sbin/init": "file:i"})
	if len(r.warnings) > 0 {
		t.Errorf("warnings: %q", r.warnings)
	}
	args := strings.Join(r.artifact.GetExec().GetMeta().GetArgs(), " ")
	if !strings.HasSuffix(args, "--initrd-segment /segments/0/initrd-segment.gz --initrd-segment /segments/1/initrd-segment.gz "+
		"--initrd-segment /segments/2/initrd-segment.gz --initrd-segment /segments/3/initrd-segment.gz --initrd-segment /segments/4/initrd-segment.gz "+
		"--initrd-segment /segments/5/initrd-segment.gz") {
		t.Errorf("artifact args %q", args)
	}
	m := r.mountNames()
	for dest, want := range map[string]string{
		"/segments/0": "[initrd] segment of the kernel's modules",
		"/segments/1": "[initrd] segment of onboot 000-a (busybox:1.36)",
		"/segments/2": "[initrd] segment of services b (example/b:1)",
		"/segments/3": "[initrd] segment of volume v",
		"/segments/4": "[initrd] segment of the base (init)",
		"/segments/5": "[initrd] segment of the files",
		"/in":         "[rootfs] time of /",
	} {
		if m[dest] != want {
			t.Errorf("%s is %q, want %q", dest, m[dest], want)
		}
	}
	// Every segment run reads its own layer; none but the base's reads a
	// merge, and that merge holds the kernel and the init image only.
	for d, e := range r.execs {
		args := strings.Join(e.GetMeta().GetArgs(), " ")
		if strings.Contains(args, "--format initrd-segment ") && strings.Contains(r.names[d], "base") {
			t.Errorf("%s: %s", r.names[d], args)
		}
	}
	for _, op := range r.ops {
		if mg := op.GetMerge(); mg != nil && len(mg.GetInputs()) != 2 {
			t.Errorf("a merge of %d inputs is in the artifact's graph; want only the base's (kernel, init)", len(mg.GetInputs()))
		}
	}
}

// TestSegmentFallback: where the segments' concatenation could differ
// from the merged tree, the initrd is written whole, with a warning.
func TestSegmentFallback(t *testing.T) {
	plain := fakeTree{"sbin/init": "file:i"}
	for _, tc := range []struct {
		name   string
		extra  string
		init   fakeTree
		target string
		want   string // warning substring; "" means segmented
	}{
		{name: "segmented", init: plain, target: "kernel+initrd"},
		{name: "a disk is segmented too", init: plain, target: "raw-bios"},
		{name: "uki", init: plain, target: "uki"},
		{name: "files entry in a bundle", init: plain, target: "kernel+initrd",
			extra: "  - path: containers/services/b/rootfs/etc/x\n    contents: x\n", want: "files entry /containers/services/b/rootfs/etc/x is in /containers"},
		{name: "files entry at containers", init: plain, target: "kernel+initrd",
			extra: "  - path: /containers\n    directory: true\n", want: "files entry /containers is in /containers"},
		{name: "files entry through a symlink into containers", target: "kernel+initrd",
			init:  fakeTree{"sbin/init": "file:i", "etc/b.json": "link:/containers/services/b/config.json"},
			extra: "  - path: etc/b.json\n    contents: x\n", want: "leads to /containers/services/b/config.json"},
		{name: "files entry over a dangling symlink", target: "kernel+initrd",
			init:  fakeTree{"sbin/init": "file:i", "etc/b.json": "link:/containers/nothing"},
			extra: "  - path: etc/b.json\n    contents: x\n", want: "is a symlink to /containers/nothing in init[0]"},
		{name: "init image with containers/", target: "kernel+initrd",
			init: fakeTree{"sbin/init": "file:i", "containers/x": "file:x"}, want: "init[0] (example/init:1) has /containers"},
		{name: "init image with a containers/ symlink", target: "kernel+initrd",
			init: fakeTree{"sbin/init": "file:i", "containers": "link:/var/c", "var/c": "dir"}, want: "has /containers, where the bundles are, and not as a directory"},
		{name: "init image with directories in containers/", target: "kernel+initrd",
			init: fakeTree{"sbin/init": "file:i", "containers/onboot": "dir", "containers/x": "dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := segBuild(t, tc.extra, tc.target, tc.init)
			args := strings.Join(r.artifact.GetExec().GetMeta().GetArgs(), " ")
			segmented := strings.Contains(args, "--initrd-segment")
			switch {
			case tc.want == "" && (!segmented || len(r.warnings) > 0):
				t.Errorf("not segmented (%q): %q", args, r.warnings)
			case tc.want != "" && segmented:
				t.Errorf("segmented: %q", args)
			case tc.want != "" && (len(r.warnings) != 1 || !strings.Contains(r.warnings[0], tc.want)):
				t.Errorf("warnings %q, want one with %q", r.warnings, tc.want)
			}
			if !segmented && r.mountNames()["/in"] != "[rootfs] time of /" {
				t.Errorf("/in is %q", r.mountNames()["/in"])
			}
		})
	}
	// Targets that hold the tree are not segmented and say nothing.
	r := segBuild(t, "  - path: containers/x\n    contents: x\n", "kernel+squashfs", plain)
	if len(r.warnings) > 0 || strings.Contains(strings.Join(r.artifact.GetExec().GetMeta().GetArgs(), " "), "segment") {
		t.Errorf("kernel+squashfs: warnings %q", r.warnings)
	}
}

func digestOfBytes(dt []byte) string { return digest.FromBytes(dt).String() }

// TestSegmentedBaseContainers: an init image's containers/ that holds
// directories only is a segment of its own, before the bundles' (whose
// directories then win, as in the merge), and the base segment leaves it
// out.
func TestSegmentedBaseContainers(t *testing.T) {
	r := segBuild(t, "", "kernel+initrd", fakeTree{"sbin/init": "file:i", "containers": "dir"})
	if len(r.warnings) > 0 {
		t.Errorf("warnings: %q", r.warnings)
	}
	m := r.mountNames()
	for dest, want := range map[string]string{
		"/segments/0": "[initrd] segment of the kernel's modules",
		"/segments/1": "[initrd] segment of the base's /containers",
		"/segments/2": "[initrd] segment of onboot 000-a (busybox:1.36)",
		"/segments/5": "[initrd] segment of the base (init)",
		"/segments/6": "[initrd] segment of the files",
	} {
		if m[dest] != want {
			t.Errorf("%s is %q, want %q", dest, m[dest], want)
		}
	}
	var formats []string
	for _, e := range r.execs {
		args := e.GetMeta().GetArgs()
		formats = append(formats, args[3])
	}
	slices.Sort(formats)
	if got := strings.Join(formats, " "); got != "initrd-base-segment-split initrd-containers-segment initrd-files-segment initrd-kernel-segment initrd-segment initrd-segment initrd-segment kernel+initrd" {
		t.Errorf("formats %s", got)
	}
}

// filesSegmentArgs builds segYAML with etc/motd renamed to motd (etc/motd
// when it stays) and extra files entries over the init image's tree, and
// returns the --segment-path arguments of the files segment's runs.
func filesSegmentArgs(t *testing.T, motd, extra string) []string {
	t.Helper()
	yml := strings.Replace(segYAML, "path: etc/motd", "path: "+motd, 1)
	cfg, err := spec.Parse("x.yml", []byte(yml+extra))
	if err != nil {
		t.Fatal(err)
	}
	o := options(&fakeResolver{})
	o.Target = "kernel+initrd"
	o.Reader = fakeReader{"[kernel] extract linuxkit/kernel:6.1": kernelTree,
		"[init] extract example/init:1": {"sbin/init": "file:i", "etc/motd": "file:m", "var/lib": "dir"}}
	var warnings []string
	o.Warn = func(w Warning) { warnings = append(warnings, w.String()) }
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings %q", warnings)
	}
	var got []string
	for _, op := range ops(t, res.Output) {
		if e := op.GetExec(); e != nil && e.GetMeta().GetArgs()[3] == "initrd-files-segment" {
			got = append(got, strings.Join(e.GetMeta().GetArgs()[10:], " "))
		}
	}
	return got
}

// TestFilesApart: the files entries are a segment of their own, after the
// base without them (entries under boot/ left out: the initrd has no
// boot/), unless one is written over a file of the layers; then the base
// segment holds them.
func TestFilesApart(t *testing.T) {
	if got := filesSegmentArgs(t, "etc/motd", ""); len(got) != 0 {
		t.Errorf("a files entry over a file of the layers: files segment %q, want none", got)
	}
	got := filesSegmentArgs(t, "etc/issue", "  - path: var/lib\n    directory: true\n  - path: opt/x/y\n    contents: y\n  - path: boot/x\n    contents: b\n")
	if want := "--segment-path /etc/issue --segment-path /var/lib --segment-path /opt/x/y"; len(got) != 1 || got[0] != want {
		t.Errorf("files segment %q, want %q", got, want)
	}
}
