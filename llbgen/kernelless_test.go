package llbgen

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/spec"
)

// TestKernelLessConfig builds a YAML without a kernel section (as some
// generators write them) for every target of the table: the ones that need
// the kernel (formats.Target.NeedsKernel) fail before any image is resolved, with a spec.Error at the start of the
// YAML naming the kernel section; the others build, with no kernel step.
func TestKernelLessConfig(t *testing.T) {
	const yml = "# generated\ninit:\n  - linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a\nonboot:\n  - name: hello\n    image: busybox:1.36\n"
	cfg, err := spec.Parse("nokernel.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range formats.All() {
		t.Run(target.Name, func(t *testing.T) {
			r := &fakeResolver{}
			opt := options(r)
			opt.Target = target.Name
			res, err := Build(context.Background(), cfg, opt)
			if !target.NeedsKernel {
				if err != nil {
					t.Fatalf("a YAML without a kernel does not build: %v", err)
				}
				for _, op := range ops(t, res.Output) {
					if src := op.GetSource(); src != nil && strings.Contains(src.GetIdentifier(), "linuxkit/kernel") {
						t.Errorf("kernel image fetched: %s", src.GetIdentifier())
					}
					for _, a := range op.GetFile().GetActions() {
						if strings.HasPrefix(a.GetMkdir().GetPath(), "/boot") || strings.HasPrefix(a.GetMkfile().GetPath(), "/boot") {
							t.Errorf("a kernel-less root filesystem gets %s", a)
						}
					}
				}
				return
			}
			var se *spec.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a spec.Error", err)
			}
			if se.File != "nokernel.yml" || se.Line != 2 || se.Col != 1 || se.Field != "kernel" ||
				!strings.Contains(se.Msg, "no kernel section") || !strings.Contains(se.Msg, target.Name) {
				t.Errorf("error %q, want nokernel.yml:2:1: kernel: ... naming the missing section and %s", err, target.Name)
			}
			if len(r.asked) != 0 {
				t.Errorf("images resolved before the error: %v", r.asked)
			}
		})
	}
}

// TestKernelSectionWithoutImage: a kernel section with a command line but
// no image is reported at the section, under kernel.image.
func TestKernelSectionWithoutImage(t *testing.T) {
	cfg, err := spec.Parse("k.yml", []byte("kernel:\n  cmdline: console=ttyS0\nonboot:\n  - name: hello\n    image: busybox:1.36\n"))
	if err != nil {
		t.Fatal(err)
	}
	opt := options(&fakeResolver{})
	opt.Target = "raw-efi"
	_, err = Build(context.Background(), cfg, opt)
	if err == nil || !strings.HasPrefix(err.Error(), "k.yml:2:3: kernel.image: missing: target raw-efi boots a kernel") {
		t.Errorf("error %v, want k.yml:2:3: kernel.image: missing: ...", err)
	}
}
