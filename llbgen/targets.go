package llbgen

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/spec"
)

// checkTargets returns, as one error, every reason why a target of ts
// cannot be built from cfg for arch: no such architecture, no kernel, a
// command line the target's boot loader cannot carry.
func checkTargets(ts []formats.Target, cfg *spec.Config, arch string) error {
	var errs []error
	for _, t := range ts {
		if err := t.Supports(arch); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkKernel(ts, cfg); err != nil {
		errs = append(errs, err)
	}
	said := map[string]bool{}
	for _, t := range ts {
		if err := t.CheckCmdline(cfg.Kernel.Cmdline); err != nil && !said[err.Error()] {
			said[err.Error()] = true
			p := cfg.Kernel.Pos
			errs = append(errs, &spec.Error{File: p.File, Line: p.Line, Col: p.Col, Field: "kernel.cmdline", Msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// checkKernel returns, as a spec.Error at the kernel section or, when the
// YAML has none, at the start of the first file, why the targets ts cannot
// be built from cfg: one error naming every target in ts that needs a
// kernel, when cfg names none.
func checkKernel(ts []formats.Target, cfg *spec.Config) error {
	if cfg.Kernel.Image != "" {
		return nil
	}
	var boots []string
	for _, t := range ts {
		if t.NeedsKernel {
			boots = append(boots, t.Name)
		}
	}
	if len(boots) == 0 {
		return nil
	}
	var without []string
	for _, o := range formats.All() {
		if !o.NeedsKernel {
			without = append(without, o.Name)
		}
	}
	what := "target " + boots[0] + " boots"
	if len(boots) > 1 {
		what = "targets " + strings.Join(boots, ", ") + " boot"
	}
	msg := fmt.Sprintf("%s a kernel, so it needs kernel.image (targets that build without a kernel: %s)", what, strings.Join(without, ", "))
	if p := cfg.Kernel.Pos; p.Line > 0 {
		return &spec.Error{File: p.File, Line: p.Line, Col: p.Col, Field: "kernel.image", Msg: "missing: " + msg}
	}
	p := cfg.Pos
	return &spec.Error{File: p.File, Line: p.Line, Col: p.Col, Field: "kernel", Msg: "the YAML has no kernel section: " + msg}
}
