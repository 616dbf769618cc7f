package llbgen

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	"github.com/lkbuild/lkbuild/spec"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Warning is a problem that does not stop the build, at a YAML position.
type Warning struct {
	Pos   spec.Pos
	Field string // dotted path such as onboot[0].image
	Msg   string
}

func (w Warning) String() string {
	return (&spec.Error{File: w.Pos.File, Line: w.Pos.Line, Col: w.Pos.Col, Field: w.Field, Msg: w.Msg}).Error()
}

// errNoPlatformMatch is what the resolver reports for an image index with
// no manifest for the platform asked (containerd's "no match for platform
// in manifest").
func errNoPlatformMatch(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no match for platform in manifest")
}

// imageUse is one place of the YAML that uses an image, and the platform
// the image must be for there.
type imageUse struct {
	Field string // e.g. onboot[0].image
	Entry string // the entry's name (bundles, volumes) or ""
	Pos   spec.Pos
	Ref   string
	Want  ocispecs.Platform
	// Kernel is set for the kernel image: its binary is booted by the
	// machine, so only the target architecture itself will do.
	Kernel bool
	Image  *resolvedImage
}

// imageUses lists every use of an image in cfg in YAML order, each with
// its resolved image: kernel, init, onboot, onshutdown, services, volumes
// (an oci-format volume once per platform it lists).
func imageUses(cfg *spec.Config, target ocispecs.Platform, images map[string]*resolvedImage, ociVolumes map[string][]*resolvedImage) []imageUse {
	var out []imageUse
	if k := cfg.Kernel; k.Image != "" {
		out = append(out, imageUse{Field: "kernel.image", Pos: k.Pos, Ref: k.Image, Want: target, Kernel: true, Image: images[k.Image]})
	}
	for i, ref := range cfg.Init {
		var pos spec.Pos
		if i < len(cfg.InitPos) {
			pos = cfg.InitPos[i]
		}
		out = append(out, imageUse{Field: fmt.Sprintf("init[%d]", i), Pos: pos, Ref: ref, Want: target, Image: images[ref]})
	}
	for _, s := range []struct {
		name    string
		entries []*spec.Image
	}{{"onboot", cfg.Onboot}, {"onshutdown", cfg.Onshutdown}, {"services", cfg.Services}} {
		for i, e := range s.entries {
			out = append(out, imageUse{Field: fmt.Sprintf("%s[%d].image", s.name, i), Entry: e.Name, Pos: e.Pos, Ref: e.Image, Want: target, Image: images[e.Image]})
		}
	}
	for i, v := range cfg.Volumes {
		switch {
		case v.Image == "":
		case v.Format != "oci":
			out = append(out, imageUse{Field: fmt.Sprintf("volumes[%d].image", i), Entry: v.Name, Pos: v.Pos, Ref: v.Image, Want: target, Image: images[v.Image]})
		default:
			for j, ri := range ociVolumes[v.Name] {
				u := imageUse{Field: fmt.Sprintf("volumes[%d].image", i), Entry: v.Name, Pos: v.Pos, Ref: v.Image, Image: ri}
				if len(v.Platforms) > 0 {
					u.Field = fmt.Sprintf("volumes[%d].platforms[%d]", i, j)
				}
				if ri != nil {
					u.Want = ri.Platform
				}
				out = append(out, u)
			}
		}
	}
	return out
}

// checkPlatforms checks that every image used in cfg is for the platform
// its use asks for, as BuildKit picks a manifest from an index
// (platforms.Only: linux/arm64 also takes linux/arm64/v8 and linux/arm/v7,
// linux/amd64 also takes linux/386); the kernel must be for the target
// architecture itself. A single-manifest image is not checked by BuildKit at
// all, and an index without the platform gives an error naming nothing, so
// both are reported here, before any layer is fetched, once per use of the
// image with its YAML position. An image whose config names no os or
// architecture is taken as the platform asked for, with a warning (once per
// image and platform), as is a 32-bit image in a 64-bit build.
func checkPlatforms(cfg *spec.Config, opt Options, images map[string]*resolvedImage, ociVolumes map[string][]*resolvedImage) error {
	var errs spec.Errors
	warned := map[string]bool{}
	warn := func(u imageUse, key, msg string) {
		if opt.Warn == nil || warned[key] {
			return
		}
		warned[key] = true
		opt.Warn(Warning{Pos: u.Pos, Field: u.Field, Msg: msg})
	}
	for _, u := range imageUses(cfg, opt.TargetPlatform, images, ociVolumes) {
		ri := u.Image
		if ri == nil {
			continue
		}
		want := platforms.Normalize(u.Want)
		what := "image " + u.Ref
		if u.Entry != "" {
			what = fmt.Sprintf("image %s of %q", u.Ref, u.Entry)
		}
		fail := func(format string, args ...any) {
			errs = append(errs, &spec.Error{File: u.Pos.File, Line: u.Pos.Line, Col: u.Pos.Col, Field: u.Field,
				Msg: what + " " + fmt.Sprintf(format, args...)})
		}
		if ri.NoMatch {
			fail("has no manifest in its index for %s, %s (nor for a platform BuildKit accepts in its place)",
				platforms.Format(want), wantedBy(u))
			continue
		}
		found := ri.Found
		var missing []string
		if found.OS == "" {
			missing, found.OS = append(missing, "os"), want.OS
		}
		if found.Architecture == "" {
			missing, found.Architecture, found.Variant = append(missing, "architecture"), want.Architecture, want.Variant
		}
		if len(missing) > 0 {
			warn(u, "missing "+u.Ref+" "+platforms.Format(want), fmt.Sprintf("%s: its config names no %s; using it as %s, the platform asked for",
				what, strings.Join(missing, " or "), platforms.Format(want)))
		}
		f := platforms.Normalize(found)
		switch {
		case u.Kernel && !platforms.OnlyStrict(want).Match(found):
			fail("is for %s, but the kernel must be for %s, %s", platforms.Format(found), platforms.Format(want), wantedBy(u))
		case !platforms.Only(want).Match(found):
			fail("is for %s, not for %s, %s", platforms.Format(found), platforms.Format(want), wantedBy(u))
		case f.Architecture != want.Architecture:
			warn(u, "compat "+u.Ref+" "+platforms.Format(want), fmt.Sprintf("%s is for %s, which BuildKit accepts for %s: it runs only on a kernel that runs 32-bit %s programs",
				what, platforms.Format(found), platforms.Format(want), f.Architecture))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// wantedBy says where the wanted platform of u comes from.
func wantedBy(u imageUse) string {
	if strings.Contains(u.Field, ".platforms[") {
		return "a platform the volume lists"
	}
	return "the platform of this build"
}
