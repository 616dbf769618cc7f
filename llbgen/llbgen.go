package llbgen

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Options is everything the conversion needs besides the configuration.
type Options struct {
	// Target is the output format (see package formats), or several
	// separated by commas (see formats.Parse); empty means formats.Default.
	Target string
	// Name is the base name of the artifacts, LinuxKit's -name.
	Name string
	// TargetPlatform is the platform of the images in the root filesystem.
	TargetPlatform ocispecs.Platform
	// BuildPlatform is where helpers run: target content is only mounted
	// read-only, never executed, so no emulation is needed.
	BuildPlatform ocispecs.Platform
	// Resolver resolves image configs (the gateway client in a build).
	Resolver llb.ImageMetaResolver
	// ResolveMode is passed to the resolver ("default", "pull", "local").
	ResolveMode string
	// Contexts, when set, is asked first for every image: a named build
	// context it returns replaces the registry's image (its contents and
	// its config).
	Contexts ImageContexts
	// Helper is the image holding /lkbuild (the frontend image itself).
	Helper *llb.State
	// Reader reads solved states: the layers of the root filesystem, to
	// reconcile their layouts and join the init images' apk databases.
	Reader Reader
	// Context is the build context, the source of files[].source.
	Context *llb.State
	// Sources maps each files[].source (as ContextPath gives it) to the
	// regular file it names in the build context once its symlinks are
	// followed (ResolveSources); an optional source missing from the map
	// is skipped, and any other is an error.
	Sources map[string]string
	// Epoch is SOURCE_DATE_EPOCH: timestamps of created files and the
	// clamp for artifact timestamps. Nil means LinuxKit's fixed time for
	// created files (LinuxKitModTime) and no clamping.
	Epoch *time.Time
	// Size is the whole disk size of disk formats in bytes (the SIZE
	// build-arg); 0 makes disks as small as their contents allow.
	Size int64
	// NoMergeOp makes the root filesystem a chain of copies, for daemons
	// without MergeOp (Docker's classic image store).
	NoMergeOp bool
	// Warn, when set, receives the problems that do not stop the build
	// (such as an image whose config names no platform).
	Warn func(Warning)
	// SourceMaps maps YAML file names to their source maps, so errors in
	// ops point at the YAML lines.
	SourceMaps map[string]*llb.SourceMap
	// SBOM puts the SPDX SBOM of the system at SBOMPath in the root
	// filesystem, as its own layer on top (LinuxKit's default; the SBOM
	// build-arg turns it off). It needs Helper.
	SBOM bool
	// InitrdParts builds kernel+initrd's initrd in parts for lkbuild
	// build's cache (formats.InitrdParts): Result.InitrdParts says how.
	InitrdParts bool
}

// Result is the conversion's output.
type Result struct {
	// Rootfs is the assembled root filesystem.
	Rootfs llb.State
	// Output is what the target exports: the rootfs itself or the
	// directory of artifacts written by mkimage.
	Output llb.State
	// Targets are the targets built, in the order given.
	Targets []formats.Target
	// SBOM is the layer holding only SBOMPath (see Options.SBOM), for the
	// result's SBOM attestation; nil without the helper image.
	SBOM *llb.State
	// InitrdParts is set when Options.InitrdParts and the target
	// formats.InitrdPartsTarget is built: Output then holds the initrd's
	// manifest instead of the initrd (initrdparts.go).
	InitrdParts *InitrdParts
	// Prefetched is set when steps of Output were started in the
	// background (Prefetcher): Output must then be evaluated before the
	// context given to Build ends.
	Prefetched bool
}

type builder struct {
	cfg    *spec.Config
	opt    Options
	images map[string]*resolvedImage
	// ociVolumes holds, per oci-format volume, its image for each of the
	// volume's platforms.
	ociVolumes map[string][]*resolvedImage
	// sbom is the SBOM layer, made with the root filesystem.
	sbom *llb.State
	// segments splits the root filesystem for a segmented initrd (set by
	// rootfs); segWarned is set once the warning saying why it cannot be
	// segmented is given.
	segments *segmentPlan
	// initrdParts is set by mkimage for Options.InitrdParts.
	initrdParts *InitrdParts
	segWarned   bool
	// replaceFiles are the files entries written over a symlink of the
	// layers: the symlink is removed first (reconciler.symlinkAt).
	replaceFiles map[*spec.File]bool
	// embedsInitrd is set when a target embeds the initrd (rootfs).
	embedsInitrd bool
	// sbomSegment is the SBOM's initrd segment, written by the SBOM's
	// run (sbomLayer), when the initrd is segmented.
	sbomSegment *llb.State
	// prefetched is set by prefetchSegments (Result.Prefetched).
	prefetched bool
}

// DockerEntrypoint is the entrypoint of the docker target's image, the
// system's init, as in LinuxKit's Dockerfile.
const DockerEntrypoint = "/bin/rc.init"

// dockerfile is added at the root by the docker target, as LinuxKit does,
// so the tree can be built into an image that runs the system's init.
const dockerfile = `
FROM scratch

COPY . ./

ENTRYPOINT ["` + DockerEntrypoint + `"]
`

// Build compiles cfg into LLB for one target platform: Prepare, then
// Prepared.Build.
func Build(ctx context.Context, cfg *spec.Config, opt Options) (*Result, error) {
	p, err := Prepare(ctx, cfg, opt)
	if err != nil {
		return nil, err
	}
	return p.Build(ctx)
}

// Prepared is a configuration whose images are resolved and checked for
// one target platform; nothing of them has been fetched yet.
type Prepared struct {
	b       *builder
	targets []formats.Target
}

// Prepare checks cfg against the target and resolves every image's config
// for opt.TargetPlatform, refusing images for another platform. It reads
// no layer: a frontend building several platforms prepares them all before
// building any, so that a bad image for one fails the build before anything
// is fetched.
func Prepare(ctx context.Context, cfg *spec.Config, opt Options) (*Prepared, error) {
	targets, err := formats.Parse(opt.Target)
	if err != nil {
		return nil, err
	}
	if opt.Name == "" {
		return nil, errors.New("no output name")
	}
	if opt.Resolver == nil {
		return nil, errors.New("no image resolver")
	}
	if opt.Reader == nil {
		return nil, errors.New("no reader for the images' contents")
	}
	if opt.TargetPlatform.OS == "" {
		return nil, errors.New("no target platform")
	}
	if err := checkTargets(targets, cfg, opt.TargetPlatform.Architecture); err != nil {
		return nil, err
	}
	images, err := resolveImages(ctx, cfg.Images(), opt)
	if err != nil {
		return nil, err
	}
	ociVolumes, err := resolveOCIVolumes(ctx, cfg, opt, images)
	if err != nil {
		return nil, err
	}
	if err := checkPlatforms(cfg, opt, images, ociVolumes); err != nil {
		return nil, err
	}
	b := &builder{cfg: cfg, opt: opt, images: images, ociVolumes: ociVolumes}
	return &Prepared{b: b, targets: targets}, nil
}

// Build compiles the prepared configuration into LLB. It reads the kernel
// and init layers through opt.Reader (see reconcile), so their images are
// fetched.
func (p *Prepared) Build(ctx context.Context) (*Result, error) {
	b, targets, opt := p.b, p.targets, p.b.opt
	rootfs, err := b.rootfs(ctx, targets)
	if err != nil {
		return nil, err
	}
	res := &Result{Rootfs: rootfs, Output: rootfs, Targets: targets, SBOM: b.sbom, Prefetched: b.prefetched}
	if len(targets) == 1 && targets[0].Tree {
		if targets[0].Dockerfile {
			res.Output = rootfs.File(b.touch(llb.Mkfile("/Dockerfile", 0o644, []byte(dockerfile), llb.WithCreatedTime(b.epoch())), "/"),
				llb.WithCustomName("[docker] Dockerfile"))
		}
		return res, nil
	}
	if opt.Helper == nil {
		return nil, errors.New("targets " + formats.Names(targets) + " need the lkbuild helper image")
	}
	// One mkimage run per target over the same root filesystem: they run
	// in parallel and are cached one by one; their directories hold
	// different files (formats.Parse), apart from the kernel and command
	// line that several write alike.
	outs := make([]llb.State, len(targets))
	for i, t := range targets {
		outs[i] = b.mkimage(t, rootfs)
	}
	res.Output = b.mergeOutputs(outs)
	res.InitrdParts = b.initrdParts
	return res, nil
}

// mergeOutputs joins the mkimage output directories into one.
func (b *builder) mergeOutputs(outs []llb.State) llb.State {
	if len(outs) == 1 {
		return outs[0]
	}
	if !b.opt.NoMergeOp {
		return llb.Merge(outs, llb.WithCustomName("[targets] merge artifacts"))
	}
	st := outs[0]
	for _, o := range outs[1:] {
		st = st.File(llb.Copy(o, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.WithCustomName("[targets] copy artifacts"))
	}
	return st
}

// LinuxKitModTime is the time LinuxKit gives every entry it creates
// (bundle configs, etc/hosts, boot/, files entries ...):
// defaultModTime in src/cmd/linuxkit/moby/build/dir.go, 2017-04-18
// 16:30:00 UTC. lkbuild uses it when SOURCE_DATE_EPOCH is not set.
var LinuxKitModTime = time.Date(2017, 4, 18, 16, 30, 0, 0, time.UTC)

// epoch is the time of created entries: SOURCE_DATE_EPOCH, else LinuxKit's.
func (b *builder) epoch() time.Time {
	if b.opt.Epoch != nil {
		return *b.opt.Epoch
	}
	return LinuxKitModTime
}

// at returns a constraint pointing the op at pos in the YAML (a nil
// source map adds nothing).
func (b *builder) at(pos spec.Pos) llb.ConstraintsOpt {
	var sm *llb.SourceMap
	if pos.Line > 0 {
		sm = b.opt.SourceMaps[pos.File]
	}
	line := int32(pos.Line)
	return sm.Location([]*pb.Range{{Start: &pb.Position{Line: line}, End: &pb.Position{Line: line}}})
}

// rootfs assembles kernel, init images, bundles and files. The layers are
// reconciled first (see reconciler): a directory that another layer's
// symlink replaces is stored through that symlink.
func (b *builder) rootfs(ctx context.Context, targets []formats.Target) (llb.State, error) {
	var layers, inits []*rootLayer
	if k := b.cfg.Kernel; k.Image != "" {
		st, mods := b.kernel(k)
		layers = append(layers, &rootLayer{st: st, what: fmt.Sprintf("kernel (%s)", k.Image), pos: k.Pos, segment: mods})
	}
	for i, ref := range b.cfg.Init {
		var pos spec.Pos
		if i < len(b.cfg.InitPos) {
			pos = b.cfg.InitPos[i]
		}
		img := b.source(ref, fmt.Sprintf("[init] %s", ref))
		l := &rootLayer{
			st:   b.imageTree(img, "/", true, fmt.Sprintf("[init] extract %s", ref), pos),
			what: fmt.Sprintf("init[%d] (%s)", i, ref),
			pos:  pos,
		}
		layers = append(layers, l)
		inits = append(inits, l)
	}
	cfgs := map[string]spec.ImageConfig{}
	for ref, ri := range b.images {
		cfgs[ref] = ri.Config
	}
	bundles, err := spec.Bundles(b.cfg, cfgs)
	if err != nil {
		return llb.State{}, err
	}
	for _, bd := range bundles {
		layers = append(layers, &rootLayer{st: b.bundle(bd), what: fmt.Sprintf("%s %s (%s)", bd.Section, path.Base(bd.Dir), bd.Image), pos: bd.Pos, static: bd.Dir})
	}
	for _, v := range b.cfg.Volumes {
		vol, err := b.volume(v)
		if err != nil {
			return llb.State{}, err
		}
		layers = append(layers, &rootLayer{st: vol, what: "volume " + v.Name, pos: v.Pos, static: spec.VolumeDir(v.Name)})
	}
	for _, t := range targets {
		b.embedsInitrd = b.embedsInitrd || t.Initrd
	}
	b.prefetchSegments(ctx, targets, layers)
	rc, err := newReconciler(ctx, b.opt.Reader, layers)
	if err != nil {
		return llb.State{}, err
	}
	if err := rc.checkFilePaths(ctx, b.cfg.Files); err != nil {
		return llb.State{}, err
	}
	b.replaceFiles = rc.replace
	st := llb.Scratch()
	if len(layers) > 0 {
		states := make([]llb.State, len(layers))
		for i, l := range layers {
			states[i] = b.relocated(l)
		}
		st = b.merge(states)
	}
	if b.segments, err = b.planSegments(ctx, rc, layers, inits); err != nil {
		return llb.State{}, err
	}
	if st, err = b.finishRootfs(ctx, st, inits); err != nil {
		return llb.State{}, err
	}
	return b.withSBOMLast(st, bundles)
}

// withSBOMLast puts the SBOM layer (withSBOM) on top of the finished root
// filesystem and, for a segmented initrd, makes it an extra segment: it
// depends on every image, so it stays out of the base's segment. The time
// of "/" is set again, as the copy without MergeOp changes it.
func (b *builder) withSBOMLast(st llb.State, bundles []spec.Bundle) (llb.State, error) {
	st, err := b.withSBOM(st, bundles)
	if err != nil || !b.opt.SBOM || b.sbom == nil {
		return st, err
	}
	if p := b.segments; p != nil && p.why == "" && b.sbomSegment != nil {
		p.extra = append(p.extra, *b.sbomSegment)
	}
	return st.File(b.touch(nil, "/"), llb.WithCustomName("[rootfs] time of / (with the SBOM)")), nil
}

// finishRootfs puts the joined apk database, the files and the time of
// "/" on the merged layers st.
func (b *builder) finishRootfs(ctx context.Context, st llb.State, inits []*rootLayer) (llb.State, error) {
	st, err := b.withAPKDatabase(ctx, st, inits)
	if err != nil {
		return llb.State{}, err
	}
	// Files go on top of the merged tree rather than into a layer of their
	// own, so parent directories that exist keep their mode and owner.
	st, err = b.withFiles(st, spec.IDs(b.cfg))
	if err != nil {
		return llb.State{}, err
	}
	// The top directory was written by every layer and file: the last
	// layer's time would win (see touch).
	return st.File(b.touch(nil, "/"), llb.WithCustomName("[rootfs] time of /")), nil
}

// merge stacks layers in order; later layers win on conflicts.
func (b *builder) merge(layers []llb.State) llb.State {
	if len(layers) == 1 {
		return layers[0]
	}
	if !b.opt.NoMergeOp {
		return llb.Merge(layers, llb.WithCustomName("[rootfs] merge"))
	}
	st := layers[0]
	for i, l := range layers[1:] {
		st = st.File(llb.Copy(l, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true, AllowEmptyWildcard: true}),
			llb.WithCustomNamef("[rootfs] merge layer %d", i+2))
	}
	return st
}

// kernel places the kernel at boot/kernel, its command line at
// boot/cmdline, the microcode at boot/ucode.cpio and unpacks the modules
// tarball at /. The tarball is unpacked first, in a step of its own, whose
// state it also returns (nil without a tarball): the initrd's kernel
// segment is written from it, cached by the tarball alone. boot/ goes on
// top, so the kernel section's boot/ files win over a tarball's (see
// docs/compat.md).
func (b *builder) kernel(k spec.Kernel) (llb.State, *llb.State) {
	img := b.source(k.Image, fmt.Sprintf("[kernel] %s", k.Image))
	ct := llb.WithCreatedTime(b.epoch())
	st := llb.Scratch()
	var mods *llb.State
	if !k.NoTar && k.Tar != "" {
		st = st.File(llb.Copy(img, path.Join("/", k.Tar), "/", &llb.CopyInfo{AttemptUnpack: true}),
			llb.WithCustomNamef("[kernel] unpack %s of %s", k.Tar, k.Image), b.at(k.Pos))
		mods = &st
	}
	// boot/ and what it holds get the epoch, as LinuxKit writes them.
	t := b.epoch()
	fa := llb.Mkdir("/boot", 0o755, ct).
		Copy(img, path.Join("/", k.File()), "/boot/kernel", &llb.CopyInfo{CreatedTime: &t}).
		Mkfile("/boot/cmdline", 0o644, []byte(k.Cmdline), ct)
	if u := k.UCodeFile(); u != "" {
		fa = fa.Copy(img, path.Join("/", u), "/boot/ucode.cpio", &llb.CopyInfo{CreatedTime: &t})
	}
	fa = b.touch(fa, "/boot")
	return st.File(fa, llb.WithCustomNamef("[kernel] extract %s", k.Image), b.at(k.Pos)), mods
}

// bundle lays out one runc bundle: config.json, runtime.json and the image
// in rootfs/ (readonly) or lower/ with empty tmp/ and rootfs/ (writable).
// A bundle whose image an earlier bundle holds (bd.Shared) gets no copy:
// its runtime.json mounts the earlier one's directory on rootfs/.
func (b *builder) bundle(bd spec.Bundle) llb.State {
	dir := path.Join("/", bd.Dir)
	label := fmt.Sprintf("[%s %s]", bd.Section, path.Base(bd.Dir))
	ct := llb.WithCreatedTime(b.epoch())
	// The config files first, on their own: they depend on the YAML and
	// the image's config only, so they are written while the image is
	// pulled, and its extraction is the last step before the bundle's
	// initrd segment. The extraction's touch gives dir and its parents the
	// same times as this one's.
	fa := llb.Mkdir(dir, 0o755, llb.WithParents(true), ct).
		Mkfile(path.Join(dir, "config.json"), 0o644, bd.Config, ct).
		Mkfile(path.Join(dir, "runtime.json"), 0o644, bd.Runtime, ct)
	if !bd.Readonly {
		fa = fa.Mkdir(path.Join(dir, "tmp"), 0o755, ct)
	}
	if !bd.Readonly || bd.Shared != "" {
		fa = fa.Mkdir(path.Join(dir, "rootfs"), 0o755, ct)
	}
	fa = b.touch(fa, withParents(dir)...)
	st := llb.Scratch().File(fa, llb.WithCustomName(label+" config.json runtime.json"), b.at(bd.Pos))
	if bd.Shared != "" {
		return st
	}
	imgDir := path.Join(dir, "rootfs")
	if !bd.Readonly {
		imgDir = path.Join(dir, "lower")
	}
	img := b.source(bd.Image, fmt.Sprintf("%s %s", label, bd.Image))
	return b.imageTreeOn(st, img, imgDir, false, label+" extract "+bd.Image, bd.Pos)
}

// volume lays out containers/volumes/<name>: the image (filtered like an
// init image) or nothing in lower/, and empty tmp/ and merged/, which the
// init mounts as an overlay at boot. An oci-format volume holds the image
// as an OCI image layout in lower/ instead.
func (b *builder) volume(v *spec.Volume) (llb.State, error) {
	dir := "/" + spec.VolumeDir(v.Name)
	lower := path.Join(dir, "lower")
	label := fmt.Sprintf("[volume %s]", v.Name)
	ct := llb.WithCreatedTime(b.epoch())
	t := b.epoch() // the helper writes the OCI layout with the time of the build
	var st llb.State
	switch {
	case v.Image == "":
		st = llb.Scratch().File(llb.Mkdir(lower, 0o755, llb.WithParents(true), ct), llb.WithCustomName(label+" empty"), b.at(v.Pos))
	case v.Format == "oci":
		layout, err := b.ociLayout(v, label)
		if err != nil {
			return llb.State{}, err
		}
		st = llb.Scratch().File(llb.Mkdir(dir, 0o755, llb.WithParents(true), ct).
			Copy(layout, "/", lower, &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true, CreatedTime: &t}),
			llb.WithCustomName(label+" OCI layout of "+v.Image), b.at(v.Pos))
	default:
		img := b.source(v.Image, fmt.Sprintf("%s %s", label, v.Image))
		st = b.imageTree(img, lower, true, label+" extract "+v.Image, v.Pos)
	}
	return st.File(b.touch(llb.Mkdir(path.Join(dir, "tmp"), 0o755, ct).Mkdir(path.Join(dir, "merged"), 0o755, ct), withParents(dir)...),
		llb.WithCustomName(label+" tmp merged"), b.at(v.Pos)), nil
}

// mkimage runs `lkbuild mkimage` from the helper image on the build
// platform over the read-only root filesystem and returns its output dir.
func (b *builder) mkimage(t formats.Target, rootfs llb.State) llb.State {
	args := []string{"/lkbuild", "mkimage", "--format", t.Name, "--name", b.opt.Name, "--input", "/in", "--output", "/out",
		"--arch", b.opt.TargetPlatform.Architecture}
	if t.Disk && b.opt.Size > 0 {
		args = append(args, "--size", fmt.Sprint(b.opt.Size))
	}
	if b.opt.Epoch != nil {
		args = append(args, "--epoch", fmt.Sprint(b.opt.Epoch.Unix()))
	}
	in := rootfs
	var mounts []llb.RunOption
	parts := b.opt.InitrdParts && t.Name == formats.InitrdPartsTarget
	segmented := false
	if t.Initrd {
		if base, segArgs, segMounts, ok := b.segmented(); ok {
			in, segmented = base, true
			if !parts {
				args, mounts = append(args, segArgs...), segMounts
			}
		}
	}
	if parts {
		args = append(args, "--initrd-parts-dir", initrdPartsMount)
		if segmented {
			// The frontend lists the segments (InitrdParts): this
			// step does not wait for them.
			args = append(args, "--initrd-parts-segmented")
		}
	}
	helper := *b.opt.Helper
	run := helper.Run(append(mounts,
		llb.Args(args),
		llb.Network(llb.NetModeNone),
		llb.AddMount("/in", in, llb.Readonly),
		llb.WithCustomNamef("[%s] lkbuild mkimage", t.Name),
	)...)
	out := run.AddMount("/out", llb.Scratch())
	if parts {
		b.initrdParts = b.newInitrdParts(out, run.AddMount(initrdPartsMount, llb.Scratch()), segmented)
	}
	return out
}

// resolveOCIVolumes resolves the image of every oci-format volume for each
// of its platforms (default: the target platform), concurrently; an image
// already resolved for the target platform is reused.
func resolveOCIVolumes(ctx context.Context, cfg *spec.Config, opt Options, known map[string]*resolvedImage) (map[string][]*resolvedImage, error) {
	out := map[string][]*resolvedImage{}
	eg, ctx := errgroup.WithContext(ctx)
	for _, v := range cfg.Volumes {
		if v.Format != "oci" || v.Image == "" {
			continue
		}
		plats := []ocispecs.Platform{opt.TargetPlatform}
		if len(v.Platforms) > 0 {
			plats = plats[:0]
			for _, s := range v.Platforms {
				p, err := platforms.Parse(s)
				if err != nil {
					return nil, fmt.Errorf("%s: volume %s: platform %q: %w", v.Pos, v.Name, s, err)
				}
				plats = append(plats, platforms.Normalize(p))
			}
		}
		// The goroutines fill their own slots of the volume's slice and
		// never touch out, which this loop writes meanwhile.
		ris := make([]*resolvedImage, len(plats))
		out[v.Name] = ris
		for i, p := range plats {
			if ri, ok := known[v.Image]; ok && platforms.Format(p) == platforms.Format(platforms.Normalize(opt.TargetPlatform)) {
				ris[i] = ri
				continue
			}
			eg.Go(func() error {
				ri, err := resolveImage(ctx, v.Image, p, opt)
				if err != nil {
					return fmt.Errorf("%s: volume %s: %w", v.Pos, v.Name, err)
				}
				ris[i] = ri
				return nil
			})
		}
	}
	return out, eg.Wait()
}

// ociLayout returns a state holding an OCI image layout of v's image for
// each of its platforms, written by the helper from the platforms' root
// filesystems (fetched for those platforms, never run).
func (b *builder) ociLayout(v *spec.Volume, label string) (llb.State, error) {
	if b.opt.Helper == nil {
		return llb.State{}, fmt.Errorf("%s: volume %s: format oci needs the lkbuild helper image", v.Pos, v.Name)
	}
	imgs := b.ociVolumes[v.Name]
	ct := llb.WithCreatedTime(b.epoch())
	var meta *llb.FileAction
	args := []string{"/lkbuild", "ocilayout", "--ref", imgs[0].Ref, "--output", "/out"}
	if n, err := reference.ParseNormalizedNamed(imgs[0].Ref); err == nil {
		args[3] = reference.TagNameOnly(n).String()
	}
	if b.opt.Epoch != nil {
		args = append(args, "--epoch", fmt.Sprint(b.opt.Epoch.Unix()))
	}
	var opts []llb.RunOption
	for i, ri := range imgs {
		f := fmt.Sprintf("/%d.json", i)
		if meta == nil {
			meta = llb.Mkfile(f, 0o644, ri.Raw, ct)
		} else {
			meta = meta.Mkfile(f, 0o644, ri.Raw, ct)
		}
		root := fmt.Sprintf("/in/%d", i)
		args = append(args, "--image", root+":/meta"+f)
		img := imageState(ri, fmt.Sprintf("%s %s (%s)", label, ri.Ref, platforms.Format(ri.Platform)))
		opts = append(opts, llb.AddMount(root, img, llb.Readonly))
	}
	opts = append(opts,
		llb.Args(args),
		llb.Network(llb.NetModeNone),
		llb.AddMount("/meta", llb.Scratch().File(meta, llb.WithCustomName(label+" image configs")), llb.Readonly),
		llb.WithCustomNamef("%s lkbuild ocilayout %s", label, v.Image),
		b.at(v.Pos),
	)
	run := b.opt.Helper.Run(opts...)
	return run.AddMount("/out", llb.Scratch()), nil
}
