package frontend

import (
	"context"
	"fmt"

	"github.com/containerd/platforms"
	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// A build request goes through these steps, in the order of the
// Dockerfile frontend's Build: read the YAML (loadConfig), answer a
// subrequest, read the build-args (parseArgs), gather what every platform
// shares (newRequest: helper image, capabilities, build context), prepare
// every platform (prepare) and build each (build, called by dockerui).

// loadConfig reads the main YAML (the entrypoint) and the MERGE files and
// loads the configuration. The source maps, by file name, point errors and
// warnings at the YAML lines.
func loadConfig(ctx context.Context, c client.Client, bc *dockerui.Client) (*dockerui.Source, *spec.Config, map[string]*llb.SourceMap, error) {
	src, err := bc.ReadEntrypoint(ctx, "yaml")
	if err != nil {
		return nil, nil, nil, err
	}
	srcs, smaps, err := loadSources(ctx, c, bc, src)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := spec.Load(srcs...)
	if err != nil {
		return nil, nil, nil, withSource(err, smaps)
	}
	return src, cfg, smaps, nil
}

// request is what the conversion of every target platform shares.
type request struct {
	c             client.Client
	bc            *dockerui.Client
	cfg           *spec.Config
	args          buildArgs
	smaps         map[string]*llb.SourceMap
	warn          func(llbgen.Warning)
	buildPlatform ocispecs.Platform
	helper        *llb.State
	noMerge       bool              // the daemon has no MergeOp
	mainContext   *llb.State        // the sources inside the build context, nil when none
	sources       map[string]string // the files' sources with their symlinks followed
	prepared      []*llbgen.Prepared
	sboms         sbomLayers // each platform's SBOM layer, for the attestation
	// initrdHave is set when the client asks for the initrd in parts
	// (OptInitrdParts): the parts it has.
	initrdHave map[string]bool
	// partsSink, when set, receives the parts the client lacks instead of
	// the result (BuildReceivingParts).
	partsSink PartsSink
}

// newRequest finds the helper image, checks the daemon's capabilities and
// reads the sources of files inside the build context.
func newRequest(ctx context.Context, c client.Client, bc *dockerui.Client, src *dockerui.Source, cfg *spec.Config, smaps map[string]*llb.SourceMap, args buildArgs) (*request, error) {
	r := &request{c: c, bc: bc, cfg: cfg, args: args, smaps: smaps, buildPlatform: platforms.DefaultSpec()}
	if len(bc.BuildPlatforms) > 0 {
		r.buildPlatform = bc.BuildPlatforms[0]
	}
	var err error
	if r.helper, err = helperImage(c, r.buildPlatform); err != nil {
		return nil, err
	}
	if err := checkSBOMHelper(args.sbom, r.helper); err != nil {
		return nil, err
	}
	if r.initrdHave, err = parseInitrdParts(c.BuildOpts().Opts); err != nil {
		return nil, err
	}
	caps := c.BuildOpts().LLBCaps
	r.noMerge = caps.Supports(pb.CapMergeOp) != nil
	if err := caps.Supports(pb.CapFileSymlinkCreate); err != nil {
		return nil, fmt.Errorf("this BuildKit cannot create symlinks with FileOp (needed for etc/mtab and files[].symlink): %w", err)
	}
	r.warn = warnAt(ctx, src, smaps)
	if err := r.readContext(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// readContext reads the sources of files inside the build context. Only
// those (and the targets of symlinks among them) are transferred, by name;
// they are checked before any image is fetched. Without such a source the
// context is not read (an empty FollowPaths would transfer all of it).
func (r *request) readContext(ctx context.Context) error {
	if !needsContext(r.cfg) {
		return nil
	}
	if paths := llbgen.SourcePaths(r.cfg); len(paths) > 0 {
		st, err := r.bc.MainContext(ctx, llb.FollowPaths(followPatterns(paths)))
		if err != nil {
			return err
		}
		r.mainContext = st
	}
	sources, err := resolveSources(ctx, r.c, r.cfg, r.mainContext, r.warn)
	if err != nil {
		return withSource(err, r.smaps)
	}
	r.sources = sources
	return nil
}

// constraints marshals a platform's LLB (the final definition and the
// layers the reader solves, so that the build reuses them).
func (r *request) constraints(tp ocispecs.Platform) []llb.ConstraintsOpt {
	c := []llb.ConstraintsOpt{llb.Platform(tp)}
	if r.bc.IsNoCache("") {
		c = append(c, llb.IgnoreCache)
	}
	return c
}

// prepare prepares every target platform (resolves and checks the images)
// before any is built, so that an image for the wrong platform fails the
// build before a layer is fetched.
func (r *request) prepare(ctx context.Context) error {
	targetPlatforms := r.bc.TargetPlatforms
	if len(targetPlatforms) == 0 {
		targetPlatforms = []ocispecs.Platform{r.buildPlatform}
	}
	r.prepared = make([]*llbgen.Prepared, len(targetPlatforms))
	named := imageContexts(r.bc, r.bc.ImageResolveMode.String())
	eg, ectx := errgroup.WithContext(ctx)
	for i, tp := range targetPlatforms {
		eg.Go(func() error {
			p, err := llbgen.Prepare(ectx, r.cfg, r.options(tp, named))
			if err != nil {
				return withSource(err, r.smaps)
			}
			r.prepared[i] = p
			return nil
		})
	}
	return eg.Wait()
}

// options are llbgen's options for the target platform tp.
func (r *request) options(tp ocispecs.Platform, named llbgen.ImageContexts) llbgen.Options {
	return llbgen.Options{
		Target:         r.args.target,
		Name:           r.args.name,
		TargetPlatform: tp,
		BuildPlatform:  r.buildPlatform,
		Resolver:       r.c,
		ResolveMode:    r.bc.ImageResolveMode.String(),
		Contexts:       named,
		Helper:         r.helper,
		Reader:         &reader{c: r.c, constraints: r.constraints(tp), cacheImports: r.bc.CacheImports},
		Context:        r.mainContext,
		Sources:        r.sources,
		Epoch:          r.args.epoch,
		Size:           r.args.size,
		NoMergeOp:      r.noMerge,
		SourceMaps:     r.smaps,
		Warn:           r.warn,
		SBOM:           r.args.sbom,
		InitrdParts:    r.initrdHave != nil,
	}
}

// build builds the prepared platform idx (dockerui.Client.Build calls it
// once per target platform; platform is nil for the build platform).
func (r *request) build(ctx context.Context, platform *ocispecs.Platform, idx int) (*dockerui.BuildResult, error) {
	tp := r.buildPlatform
	if platform != nil {
		tp = *platform
	}
	res, err := r.prepared[idx].Build(ctx)
	if err != nil {
		return nil, withSource(err, r.smaps)
	}
	r.sboms.set(platform, res.SBOM)
	if res.InitrdParts != nil {
		if err := r.withInitrdParts(ctx, tp, res); err != nil {
			return nil, err
		}
	}
	def, err := marshalState(ctx, res.Output, r.constraints(tp)...)
	if err != nil {
		return nil, fmt.Errorf("marshalling LLB: %w", err)
	}
	sr, err := r.c.Solve(ctx, client.SolveRequest{
		Definition:   def.ToPB(),
		CacheImports: r.bc.CacheImports,
		// Steps started in the background end with ctx: join them now,
		// not after the frontend returns (llbgen.Prefetcher).
		Evaluate: res.Prefetched,
	})
	if err != nil {
		return nil, err
	}
	ref, err := sr.SingleRef()
	if err != nil {
		return nil, err
	}
	return &dockerui.BuildResult{Reference: ref, Image: resultImage(tp, res.Targets), Epoch: r.args.epoch}, nil
}
