package llbgen

import (
	"context"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/solver/pb"
)

// TestInitrdPartsSegmented: for the initrd in parts, a segmented
// kernel+initrd's mkimage step does not wait for the segments (no
// segment mounts, --initrd-parts-segmented); the manifest is its own
// parts followed by the segments in order (Compose), which must be all of
// them, each with its index.
func TestInitrdPartsSegmented(t *testing.T) {
	cfg, err := spec.Parse("x.yml", []byte(segYAML))
	if err != nil {
		t.Fatal(err)
	}
	o := options(&fakeResolver{})
	o.Target = "kernel+initrd"
	o.InitrdParts = true
	o.Reader = fakeReader{"[kernel] extract linuxkit/kernel:6.1": kernelTree, "[init] extract example/init:1": {"sbin/init": "file:i"}}
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ip := res.InitrdParts
	if ip == nil || !ip.Segmented() || len(ip.SegmentSteps()) != 6 {
		t.Fatalf("initrd parts %+v", ip)
	}
	def, err := ip.Own.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		e := op.GetExec()
		if e == nil || !strings.Contains(strings.Join(e.GetMeta().GetArgs(), " "), "--format kernel+initrd") {
			continue
		}
		found = true
		args := strings.Join(e.GetMeta().GetArgs(), " ")
		if !strings.Contains(args, "--initrd-parts-segmented") || strings.Contains(args, "--initrd-segment ") {
			t.Errorf("mkimage args %q", args)
		}
		for _, m := range e.GetMounts() {
			if strings.HasPrefix(m.GetDest(), "/segments") {
				t.Errorf("mkimage mounts %s", m.GetDest())
			}
		}
	}
	if !found {
		t.Fatal("no kernel+initrd mkimage step")
	}

	ucode := formats.InitrdPart{SHA256: strings.Repeat("a", 64), Size: 5, Segment: -1}
	var segs []formats.InitrdPart
	for i := range 6 {
		segs = append(segs, formats.InitrdPart{SHA256: strings.Repeat(string("bcdef0"[i]), 64), Size: int64(10 + i), Segment: i})
	}
	b, err := ip.Compose(formats.InitrdParts{Initrd: "x-initrd.img", Parts: []formats.InitrdPart{ucode}}, segs)
	if err != nil {
		t.Fatal(err)
	}
	m, err := formats.ParseInitrdParts(b)
	if err != nil || m.Initrd != "x-initrd.img" || len(m.Parts) != 7 || m.Parts[0] != ucode || m.Parts[6] != segs[5] {
		t.Errorf("composed %s (%v)", b, err)
	}
	if _, err := ip.Compose(formats.InitrdParts{}, segs[:5]); err == nil {
		t.Error("a segment missing was composed")
	}
	segs[2].Segment = 4
	if _, err := ip.Compose(formats.InitrdParts{}, segs); err == nil {
		t.Error("a segment out of place was composed")
	}
}
