package llbgen

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	sbom "github.com/lkbuild/lkbuild/internal/sbominput"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

// recordingReader is fakeReader recording the names of the states opened.
type recordingReader struct {
	fakeReader
	mu     sync.Mutex
	opened []string
}

func (r *recordingReader) Open(ctx context.Context, st llb.State) (Tree, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	for _, m := range def.Metadata {
		r.opened = append(r.opened, m.Description["llb.customname"])
	}
	r.mu.Unlock()
	return r.fakeReader.Open(ctx, st)
}

// sbomOps returns the `lkbuild sbom` exec op of st and the input JSON it
// is given.
func sbomOps(t *testing.T, st llb.State) (*pb.ExecOp, sbom.Input) {
	t.Helper()
	var exec *pb.ExecOp
	var in sbom.Input
	for _, op := range ops(t, st) {
		if e := op.GetExec(); e != nil && slices.Contains(e.GetMeta().GetArgs(), "sbom") {
			if exec != nil {
				t.Fatal("two lkbuild sbom runs")
			}
			exec = e
		}
		for _, a := range op.GetFile().GetActions() {
			if mk := a.GetMkfile(); mk != nil && mk.GetPath() == "/sbom-input.json" {
				if err := json.Unmarshal(mk.GetData(), &in); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if exec == nil {
		t.Fatal("no lkbuild sbom run")
	}
	return exec, in
}

// TestSBOMLayer: with Options.SBOM, /sbom.spdx.json comes from one helper
// run over every distinct image, mounted read-only, with the resolved
// references and the places of the images as input; it is a layer of its
// own merged on top of the root filesystem, and no layer is read to make
// it.
func TestSBOMLayer(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	o.SBOM = true
	rr := &recordingReader{}
	o.Reader = rr
	res, err := Build(context.Background(), parseFile(t, "testdata/volumes.yml"), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.SBOM == nil {
		t.Fatal("no SBOM layer in the result")
	}
	for _, n := range rr.opened {
		if strings.HasPrefix(n, "[sbom]") {
			t.Errorf("the SBOM made llbgen read %q", n)
		}
	}
	exec, in := sbomOps(t, res.Rootfs)
	if got := strings.Join(exec.GetMeta().GetArgs(), " "); got != "/lkbuild sbom --input /meta/sbom-input.json --output /out/sbom.spdx.json" {
		t.Errorf("args %q", got)
	}
	if exec.GetNetwork() != pb.NetMode_NONE {
		t.Error("lkbuild sbom must run without network")
	}
	var trees []string
	for _, m := range exec.GetMounts() {
		if strings.HasPrefix(m.GetDest(), "/in/") || m.GetDest() == "/meta" {
			if !m.GetReadonly() {
				t.Errorf("%s is mounted read-write", m.GetDest())
			}
			if m.GetDest() != "/meta" {
				trees = append(trees, m.GetDest())
			}
		}
	}
	// kernel, busybox (written two ways), alpine for amd64 and arm64.
	if len(trees) != 4 {
		t.Errorf("image trees mounted: %q, want 4", trees)
	}
	if in.Name != "minimal" || in.Platform != "linux/amd64" || in.Created != LinuxKitModTime {
		t.Errorf("input %q %q %v", in.Name, in.Platform, in.Created)
	}
	var got []string
	for _, im := range in.Images {
		s := im.Field + " " + im.Ref + " " + im.Platform + " " + im.Path
		if im.MountedAt != "" {
			s += " on " + im.MountedAt
		}
		if im.Layout {
			s += " layout"
		}
		got = append(got, s)
		if !strings.Contains(im.Pinned, "@sha256:") || !slices.Contains(trees, im.Tree) {
			t.Errorf("%s: pinned %q tree %q", im.Field, im.Pinned, im.Tree)
		}
	}
	want := []string{
		"kernel.image linuxkit/kernel:6.12.59 linux/amd64 /",
		"onboot[0].image busybox:1.36 linux/amd64 containers/onboot/000-one/lower",
		"onboot[1].image docker.io/library/busybox:1.36 linux/amd64 containers/onboot/000-one/lower on containers/onboot/001-two/rootfs",
		"services[0].image busybox:1.36 linux/amd64 containers/onboot/000-one/lower on containers/services/three/rootfs",
		"volumes[0].image alpine:3.20 linux/amd64 containers/volumes/data/lower",
		"volumes[2].platforms[0] alpine:3.20 linux/arm64 containers/volumes/images/lower layout",
		"volumes[2].platforms[1] alpine:3.20 linux/amd64 containers/volumes/images/lower layout",
	}
	if !slices.Equal(got, want) {
		t.Errorf("images:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if in.Images[1].Tree != in.Images[2].Tree || in.Images[1].Tree != in.Images[3].Tree || in.Images[4].Tree != in.Images[6].Tree {
		t.Error("an image used twice is mounted twice")
	}
	// The SBOM layer is the last input of the last merge.
	var last *pb.MergeOp
	for _, op := range ops(t, res.Rootfs) {
		if m := op.GetMerge(); m != nil {
			last = m
		}
	}
	if last == nil || len(last.GetInputs()) != 2 {
		t.Fatalf("the SBOM is not merged as a layer of its own: %v", last)
	}
}

// TestSBOMOff: without Options.SBOM the root filesystem has no SBOM, but
// the layer is still made for the attestation.
func TestSBOMOff(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops(t, res.Rootfs) {
		if op.GetExec() != nil {
			t.Fatal("the root filesystem runs a helper without the SBOM")
		}
	}
	if res.SBOM == nil {
		t.Fatal("no SBOM layer for the attestation")
	}
	sbomOps(t, *res.SBOM)
}

func TestSBOMNeedsHelper(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target, o.SBOM, o.Helper = "tar", true, nil
	if _, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o); err == nil || !strings.Contains(err.Error(), "helper") {
		t.Errorf("err = %v, want one about the helper image", err)
	}
	o.SBOM = false
	res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o)
	if err != nil || res.SBOM != nil {
		t.Errorf("without helper and SBOM: %v, layer %v", err, res.SBOM)
	}
}

func TestSBOMNoMergeOp(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target, o.SBOM, o.NoMergeOp = "tar", true, true
	res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops(t, res.Rootfs) {
		if op.GetMerge() != nil {
			t.Fatal("MergeOp used although the daemon lacks it")
		}
	}
	sbomOps(t, res.Rootfs)
}
