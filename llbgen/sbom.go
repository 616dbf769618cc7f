package llbgen

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/containerd/platforms"
	sbom "github.com/lkbuild/lkbuild/internal/sbominput"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
)

// SBOMPath is where the SBOM goes in the root filesystem, as `linuxkit
// build` writes it by default.
const SBOMPath = "/sbom.spdx.json"

// The helper's mounts for `lkbuild sbom`.
const (
	sbomInputDir = "/meta"
	sbomInput    = sbomInputDir + "/sbom-input.json"
	sbomTreesDir = "/in"
	sbomOutDir   = "/out"
	// sbomSegmentDir receives the SBOM's initrd segment.
	sbomSegmentDir = "/segment"
)

// sbomLayer returns a state holding only SBOMPath: the SPDX document of
// the system, written by `lkbuild sbom` on the build platform with every
// image's root filesystem mounted read-only (each image once), from what
// resolving the images told (references, digests, platforms) and where
// each use of an image lands in the tree. Nothing of the images is read
// here: the helper reads their package databases during the solve. It is
// a layer of its own, on top of everything else, because it depends on
// every image. bundles are the configuration's bundles (spec.Bundles).
func (b *builder) sbomLayer(bundles []spec.Bundle) (llb.State, error) {
	if b.opt.Helper == nil {
		return llb.State{}, fmt.Errorf("the SBOM (%s) is written by the lkbuild helper image, which is not set", SBOMPath)
	}
	in := sbom.Input{
		Name:     b.opt.Name,
		Platform: platforms.Format(platforms.Normalize(b.opt.TargetPlatform)),
		Created:  b.epoch().UTC(),
	}
	uses := imageUses(b.cfg, b.opt.TargetPlatform, b.images, b.ociVolumes)
	var bi int
	trees := map[string]string{}
	var mounts []llb.RunOption
	for _, u := range uses {
		ri := u.Image
		if ri == nil || ri.NoMatch {
			continue
		}
		im := sbom.Image{Field: u.Field, Entry: u.Entry, Ref: u.Ref, Pinned: ri.Pinned, Platform: platforms.Format(ri.Platform), Path: "/"}
		switch {
		case u.Kernel || strings.HasPrefix(u.Field, "init["):
		case strings.HasPrefix(u.Field, "volumes["):
			im.Path = path.Join(spec.VolumeDir(u.Entry), "lower")
			im.Layout = strings.Contains(u.Field, ".platforms[") || b.isOCIVolume(u.Entry)
		default:
			if bi >= len(bundles) || bundles[bi].Name != u.Entry || bundles[bi].Image != u.Ref {
				return llb.State{}, fmt.Errorf("%s: internal error: image uses and bundles do not match", u.Field)
			}
			bd := bundles[bi]
			bi++
			own := path.Join(bd.Dir, "rootfs")
			if !bd.Readonly {
				own = path.Join(bd.Dir, "lower")
			}
			im.Path = own
			if bd.Shared != "" {
				im.Path, im.MountedAt = strings.TrimPrefix(bd.Shared, "/"), path.Join(bd.Dir, "rootfs")
			}
		}
		key := im.Pinned + " " + im.Platform
		if ri.State != nil {
			key = "context " + im.Ref + " " + im.Platform
		}
		dir, ok := trees[key]
		if !ok {
			dir = fmt.Sprintf("%s/%d", sbomTreesDir, len(trees))
			trees[key] = dir
			img := imageState(ri, fmt.Sprintf("[sbom] %s (%s)", u.Ref, im.Platform))
			mounts = append(mounts, llb.AddMount(dir, img, llb.Readonly))
		}
		im.Tree = dir
		in.Images = append(in.Images, im)
	}
	dt, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return llb.State{}, err
	}
	meta := llb.Scratch().File(llb.Mkfile("/"+path.Base(sbomInput), 0o644, dt, llb.WithCreatedTime(b.epoch())),
		llb.WithCustomName("[sbom] images"))
	args := []string{"/lkbuild", "sbom", "--input", sbomInput, "--output", path.Join(sbomOutDir, path.Base(SBOMPath))}
	// The SBOM's initrd segment (see withSBOMLast) is written by the same
	// run: a run of its own cost a container start on every build that
	// changes an image.
	segment := b.opt.SBOM && b.embedsInitrd && b.segments != nil && b.segments.why == ""
	if segment {
		args = append(args, "--segment-output", sbomSegmentDir)
		if b.opt.Epoch != nil {
			args = append(args, "--epoch", fmt.Sprint(b.opt.Epoch.Unix()))
		}
	}
	opts := append(mounts,
		llb.Args(args),
		llb.Network(llb.NetModeNone),
		llb.AddMount(sbomInputDir, meta, llb.Readonly),
		llb.WithCustomName("[sbom] lkbuild sbom"),
	)
	run := b.opt.Helper.Run(opts...)
	out := run.AddMount(sbomOutDir, llb.Scratch())
	if segment {
		seg := run.AddMount(sbomSegmentDir, llb.Scratch())
		b.sbomSegment = &seg
	}
	t := b.epoch()
	fa := llb.Copy(out, "/"+path.Base(SBOMPath), SBOMPath, &llb.CopyInfo{
		CreatedTime: &t,
		ChownOpt:    &llb.ChownOpt{User: &llb.UserOpt{UID: 0}, Group: &llb.UserOpt{UID: 0}},
	})
	return llb.Scratch().File(b.touch(fa, "/"), llb.WithCustomName("[sbom] "+SBOMPath)), nil
}

// isOCIVolume reports whether the volume name has format oci.
func (b *builder) isOCIVolume(name string) bool {
	for _, v := range b.cfg.Volumes {
		if v.Name == name {
			return v.Format == "oci"
		}
	}
	return false
}

// withSBOM makes the SBOM layer (kept for Result.SBOM, the attestation)
// and, when Options.SBOM is set, puts it on top of rootfs. Without the
// helper image there is no SBOM layer, which only Options.SBOM makes an
// error.
func (b *builder) withSBOM(rootfs llb.State, bundles []spec.Bundle) (llb.State, error) {
	if b.opt.Helper == nil && !b.opt.SBOM {
		return rootfs, nil
	}
	layer, err := b.sbomLayer(bundles)
	if err != nil {
		return llb.State{}, err
	}
	b.sbom = &layer
	if !b.opt.SBOM {
		return rootfs, nil
	}
	if b.opt.NoMergeOp {
		return rootfs.File(llb.Copy(layer, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.WithCustomName("[sbom] add "+SBOMPath)), nil
	}
	return llb.Merge([]llb.State{rootfs, layer}, llb.WithCustomName("[sbom] add "+SBOMPath)), nil
}
