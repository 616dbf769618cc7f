package llbgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/platforms"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeResolver answers image config requests from a table, as a registry
// would, and records what it was asked. An image is an index with every
// platform unless single (a single manifest whose config names that
// platform, whatever is asked) or index (an index of only those platforms,
// picked from as BuildKit does) says otherwise.
type fakeResolver struct {
	mu      sync.Mutex
	configs map[string]ocispecs.ImageConfig
	single  map[string]ocispecs.Platform
	index   map[string][]ocispecs.Platform
	asked   map[string]int
	plat    map[string]string
}

func (r *fakeResolver) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.asked == nil {
		r.asked, r.plat = map[string]int{}, map[string]string{}
	}
	r.asked[ref]++
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		r.plat[ref] = opt.ImageOpt.Platform.Architecture
	}
	img := ocispecs.Image{Platform: amd64, Config: r.configs[ref]}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		img.Platform = *opt.ImageOpt.Platform
	}
	if p, ok := r.single[ref]; ok {
		img.Platform = p
	}
	if list, ok := r.index[ref]; ok {
		m := platforms.Only(img.Platform)
		var best *ocispecs.Platform
		for _, p := range list {
			if m.Match(p) && (best == nil || m.Less(p, *best)) {
				best = &p
			}
		}
		if best == nil {
			return "", "", nil, fmt.Errorf("%s: no match for platform in manifest: not found", ref)
		}
		img.Platform = *best
	}
	dt, err := json.Marshal(img)
	if err != nil {
		return "", "", nil, err
	}
	return ref, digest.FromString(ref), dt, nil
}

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

func parseFile(t *testing.T, name string) *spec.Config {
	t.Helper()
	dt, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := spec.Parse(name, dt)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func options(r llb.ImageMetaResolver) Options {
	helper := llb.Image("docker.io/lkbuild/lkbuild:test")
	return Options{Name: "minimal", TargetPlatform: amd64, BuildPlatform: amd64, Resolver: r, Helper: &helper, Reader: fakeReader{}}
}

// ops marshals st and decodes every op of the definition.
func ops(t *testing.T, st llb.State) []*pb.Op {
	t.Helper()
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*pb.Op
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		out = append(out, &op)
	}
	return out
}

func TestMinimalGraph(t *testing.T) {
	r := &fakeResolver{configs: map[string]ocispecs.ImageConfig{
		"docker.io/library/busybox:1.36": {Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
	}}
	res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), options(r))
	if err != nil {
		t.Fatal(err)
	}
	// Every distinct image is resolved once, for the target platform.
	for _, ref := range []string{"docker.io/linuxkit/kernel:6.12.59", "docker.io/library/busybox:1.36"} {
		if r.asked[ref] != 1 || r.plat[ref] != "amd64" {
			t.Errorf("%s resolved %d times for %q, want once for amd64", ref, r.asked[ref], r.plat[ref])
		}
	}
	// The root filesystem merges kernel, two init images and two bundles.
	for _, op := range ops(t, res.Rootfs) {
		if m := op.GetMerge(); m != nil && len(m.GetInputs()) != 5 {
			t.Errorf("rootfs merge of %d inputs, want 5", len(m.GetInputs()))
		}
	}
	// The initrd is segmented (see TestSegmentedGraph): the artifact's
	// base merges kernel and init images only.
	var merges, execs int
	var sources []string
	for _, op := range ops(t, res.Output) {
		switch {
		case op.GetMerge() != nil:
			merges++
			if n := len(op.GetMerge().GetInputs()); n != 3 {
				t.Errorf("base merge of %d inputs, want 3", n)
			}
		case op.GetExec() != nil:
			execs++
			args := strings.Join(op.GetExec().GetMeta().GetArgs(), " ")
			if strings.Contains(args, "kernel+initrd") && args != "/lkbuild mkimage --format kernel+initrd --name minimal --input /in --output /out --arch amd64"+
				" --initrd-segment /segments/0/initrd-segment.gz --initrd-segment /segments/1/initrd-segment.gz --initrd-segment /segments/2/initrd-segment.gz"+
				" --initrd-segment /segments/3/initrd-segment.gz" {
				t.Errorf("mkimage args = %q", args)
			}
			for _, m := range op.GetExec().GetMounts() {
				if m.GetDest() != "/out" && m.GetDest() != "/" && !m.GetReadonly() {
					t.Errorf("%s must be mounted read-only", m.GetDest())
				}
			}
			if op.GetExec().GetNetwork() != pb.NetMode_NONE {
				t.Error("mkimage must run without network")
			}
		case op.GetSource() != nil:
			sources = append(sources, op.GetSource().GetIdentifier())
		}
	}
	if merges != 1 || execs != 5 {
		t.Errorf("%d merges and %d execs, want 1 and 5 (the kernel's segment, two bundle segments, the base's and the artifact)", merges, execs)
	}
	want := "docker-image://docker.io/library/busybox:1.36@" + digest.FromString("docker.io/library/busybox:1.36").String()
	found := false
	for _, s := range sources {
		found = found || s == want
	}
	if !found {
		t.Errorf("images are not pinned by digest: sources %v", sources)
	}
}

func TestNoMergeOpFallback(t *testing.T) {
	o := options(&fakeResolver{})
	o.NoMergeOp = true
	res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops(t, res.Rootfs) {
		if op.GetMerge() != nil {
			t.Fatal("MergeOp used although the daemon lacks it")
		}
	}
}

// TestTarTargetIsTheRootfs: the tar target is the root filesystem itself,
// made without `lkbuild mkimage`. The only helper run in it is `lkbuild
// sbom`, which writes the SBOM layer when the SBOM is on (LinuxKit's
// default); without the SBOM no helper runs at all.
func TestTarTargetIsTheRootfs(t *testing.T) {
	for _, withSBOM := range []bool{false, true} {
		o := options(&fakeResolver{})
		o.Target = "tar"
		o.SBOM = withSBOM
		res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o)
		if err != nil {
			t.Fatal(err)
		}
		var runs []string
		for _, op := range ops(t, res.Output) {
			if e := op.GetExec(); e != nil {
				runs = append(runs, strings.Join(e.GetMeta().GetArgs(), " "))
			}
		}
		want := 0
		if withSBOM {
			want = 1
		}
		if len(runs) != want || (want == 1 && !strings.HasPrefix(runs[0], "/lkbuild sbom ")) {
			t.Errorf("SBOM %v: the tar target runs %q, want only `lkbuild sbom` with the SBOM and nothing without", withSBOM, runs)
		}
	}
}

func TestUnknownTarget(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "floppy"
	if _, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o); err == nil || !strings.Contains(err.Error(), "floppy") {
		t.Fatalf("err = %v, want an unknown target error", err)
	}
}

// TestDockerTarget: the docker target is the root filesystem plus
// LinuxKit's Dockerfile at /, made without `lkbuild mkimage`: the only
// helper run in it is `lkbuild sbom`, with the SBOM on.
func TestDockerTarget(t *testing.T) {
	for _, withSBOM := range []bool{false, true} {
		o := options(&fakeResolver{})
		o.Target = "docker"
		o.SBOM = withSBOM
		res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		var runs []string
		for _, op := range ops(t, res.Output) {
			for _, a := range op.GetFile().GetActions() {
				if f := a.GetMkfile(); f != nil && f.GetPath() == "/Dockerfile" {
					found = strings.Contains(string(f.GetData()), `ENTRYPOINT ["/bin/rc.init"]`)
				}
			}
			if e := op.GetExec(); e != nil {
				runs = append(runs, strings.Join(e.GetMeta().GetArgs(), " "))
			}
		}
		if !found {
			t.Errorf("SBOM %v: no /Dockerfile with LinuxKit's entrypoint", withSBOM)
		}
		if (withSBOM && (len(runs) != 1 || !strings.HasPrefix(runs[0], "/lkbuild sbom "))) || (!withSBOM && len(runs) != 0) {
			t.Errorf("SBOM %v: the docker target runs %q, want only `lkbuild sbom` with the SBOM and nothing without", withSBOM, runs)
		}
	}
}

// TestKernelFiles: binary, ucode and tar of the kernel section become an
// unpack at / (a step of its own, the kernel's initrd segment's input) and
// copies to boot/kernel and boot/ucode.cpio on top.
func TestKernelFiles(t *testing.T) {
	cfg, err := spec.Parse("k.yml", []byte("kernel:\n  image: linuxkit/kernel:6.12.59\n  binary: bzImage\n  ucode: intel-ucode.cpio\n  tar: modules.tar\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := options(&fakeResolver{})
	o.Target = "tar"
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	var copies []string
	for _, op := range ops(t, res.Output) {
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil && c.GetSrc() != emptyDirPath {
				copies = append(copies, fmt.Sprintf("%s>%s unpack=%v", c.GetSrc(), c.GetDest(), c.GetAttemptUnpackDockerCompatibility()))
			}
		}
	}
	want := "/modules.tar>/ unpack=true|/bzImage>/boot/kernel unpack=false|/intel-ucode.cpio>/boot/ucode.cpio unpack=false"
	if got := strings.Join(copies, "|"); got != want {
		t.Errorf("kernel copies\n got %s\nwant %s", got, want)
	}
}

// TestMkimageArgs checks that the target architecture always reaches
// mkimage, and the disk size only for disk targets.
func TestMkimageArgs(t *testing.T) {
	cfg := parseFile(t, "../examples/minimal.yml")
	for target, want := range map[string]string{
		"raw-efi": "--format raw-efi --name minimal --input /in --output /out --arch arm64 --size 2147483648",
		"iso-efi": "--format iso-efi --name minimal --input /in --output /out --arch arm64",
	} {
		opt := options(&fakeResolver{})
		opt.Target, opt.Size = target, 2<<30
		opt.TargetPlatform.Architecture = "arm64"
		res, err := Build(context.Background(), cfg, opt)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, op := range ops(t, res.Output) {
			if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.GetMeta().GetArgs(), " "), "--format "+target) {
				got = strings.Join(e.GetMeta().GetArgs(), " ")
				// the segments of a segmented initrd follow
				got, _, _ = strings.Cut(got, " --initrd-segment")
			}
		}
		if got != "/lkbuild mkimage "+want {
			t.Errorf("%s: mkimage args %q, want %q", target, got, want)
		}
	}
}

// TestBIOSTargetsAmd64Only checks that BIOS targets are refused for arm64
// before anything is resolved, with a message naming the EFI targets, and
// accepted for amd64.
func TestBIOSTargetsAmd64Only(t *testing.T) {
	cfg := parseFile(t, "../examples/minimal.yml")
	for _, target := range []string{"raw-bios", "iso-bios", "vhd", "gcp"} {
		opt := options(&fakeResolver{})
		opt.Target = target
		opt.TargetPlatform.Architecture = "arm64"
		_, err := Build(context.Background(), cfg, opt)
		if err == nil || !strings.Contains(err.Error(), "does not exist for arm64") || !strings.Contains(err.Error(), "raw-efi") {
			t.Errorf("%s on arm64: error %v", target, err)
		}
		opt.TargetPlatform.Architecture = "amd64"
		if _, err := Build(context.Background(), cfg, opt); err != nil {
			t.Errorf("%s on amd64: %v", target, err)
		}
	}
	for _, target := range []string{"raw-efi", "iso-efi", "uki", "kernel+initrd"} {
		opt := options(&fakeResolver{})
		opt.Target = target
		opt.TargetPlatform.Architecture = "arm64"
		if _, err := Build(context.Background(), cfg, opt); err != nil {
			t.Errorf("%s on arm64: %v", target, err)
		}
	}
}

// TestGRUBCmdlineError: a command line GRUB would interpret is refused for
// the BIOS disks with the YAML position, and accepted for EFI formats.
func TestGRUBCmdlineError(t *testing.T) {
	cfg := parseFile(t, "../examples/minimal.yml")
	cfg.Kernel.Cmdline = "console=ttyS0 x=$y"
	opt := options(&fakeResolver{})
	opt.Target = "vhd"
	_, err := Build(context.Background(), cfg, opt)
	var se *spec.Error
	if !errors.As(err, &se) || se.Field != "kernel.cmdline" || se.Line == 0 || !strings.Contains(se.Msg, `'$'`) {
		t.Fatalf("error %v, want a spec.Error at kernel.cmdline naming '$'", err)
	}
	opt.Target = "raw-efi"
	if _, err := Build(context.Background(), cfg, opt); err != nil {
		t.Errorf("raw-efi: %v", err)
	}
}
