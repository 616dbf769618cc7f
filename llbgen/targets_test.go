package llbgen

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/spec"
)

// TestSeveralTargets: one root filesystem, one mkimage run per target,
// and their output directories merged (or copied together without
// MergeOp) into the one output.
func TestSeveralTargets(t *testing.T) {
	cfg := parseFile(t, "../examples/minimal.yml")
	for _, noMerge := range []bool{false, true} {
		o := options(&fakeResolver{})
		o.Target, o.NoMergeOp = "kernel+initrd,iso-efi,raw-efi", noMerge
		res, err := Build(context.Background(), cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := formats.Names(res.Targets); got != o.Target {
			t.Errorf("Result.Targets = %s", got)
		}
		var formats []string
		for _, op := range ops(t, res.Output) {
			if e := op.GetExec(); e != nil {
				args := e.GetMeta().GetArgs()
				for i, a := range args {
					if a == "--format" && !strings.HasPrefix(args[i+1], "initrd-") {
						formats = append(formats, args[i+1])
					}
				}
			}
		}
		def, err := res.Output.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		merges, copies := 0, 0
		for _, m := range def.Metadata {
			switch m.Description["llb.customname"] {
			case "[targets] merge artifacts":
				merges++
			case "[targets] copy artifacts":
				copies++
			}
		}
		sort.Strings(formats)
		if got := strings.Join(formats, ","); got != "iso-efi,kernel+initrd,raw-efi" {
			t.Errorf("noMerge=%v: mkimage formats %s, want one run per target", noMerge, got)
		}
		if noMerge && (merges != 0 || copies != 2) {
			t.Errorf("without MergeOp: %d merges, %d copies of artifacts; want 0 and 2", merges, copies)
		}
		if !noMerge && merges != 1 {
			t.Errorf("%d merges of artifacts, want 1", merges)
		}
	}
}

// TestSeveralTargetsCheckedTogether: the arch, kernel and command-line
// checks of every target are reported together, before any image is
// resolved.
func TestSeveralTargetsCheckedTogether(t *testing.T) {
	cfg, err := spec.Parse("nokernel.yml", []byte("init:\n  - linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeResolver{}
	o := options(r)
	o.Target = "kernel+initrd,iso-bios,uki"
	o.TargetPlatform.Architecture = "arm64"
	_, err = Build(context.Background(), cfg, o)
	if err == nil {
		t.Fatal("built")
	}
	for _, want := range []string{"target iso-bios does not exist for arm64", "targets iso-bios, uki boot a kernel"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var se *spec.Error
	if !errors.As(err, &se) || se.Field != "kernel" {
		t.Errorf("the kernel problem is not a spec.Error at the kernel: %v", err)
	}
	if len(r.asked) != 0 {
		t.Errorf("images resolved before the targets were checked: %v", r.asked)
	}
}
