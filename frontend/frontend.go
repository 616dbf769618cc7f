package frontend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/frontend/subrequests/targets"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	fstypes "github.com/tonistiigi/fsutil/types"
)

const (
	// OptHelperImage names the image that provides /lkbuild for the
	// in-build helper when the frontend does not run from its own image
	// (lkbuild build runs it in-process).
	OptHelperImage = "helper-image"
	// ArgName is the build-arg that sets the artifacts' base name
	// (LinuxKit's -name); the default is the YAML file name without its
	// extension.
	ArgName = "NAME"
	// ArgSourceDateEpoch makes output timestamps reproducible.
	ArgSourceDateEpoch = "SOURCE_DATE_EPOCH"
	// ArgMerge lists more YAML files (comma separated, relative to the
	// directory of the -f file) merged after it in order, as `linuxkit
	// build a.yml b.yml` does.
	ArgMerge = "MERGE"
	// ArgSize sets the size of disk formats, as LinuxKit's --size: a
	// number with an optional K, M, G or T suffix (binary units; no suffix
	// means MiB). By default a disk is as small as its contents allow.
	// The lower-case spelling "size" is accepted too.
	ArgSize = "SIZE"
)

// Build is the gateway frontend's entry point. Its steps are in
// request.go.
func Build(ctx context.Context, c client.Client) (*client.Result, error) {
	return build(ctx, c, nil)
}

// BuildFunc is the gateway's build function, named here so that the
// client's process (lkbuild build) runs the frontend without talking to
// the gateway client itself.
type BuildFunc = client.BuildFunc

// BuildReceivingParts is Build for a frontend run in the client's process
// (lkbuild build) that receives the initrd's parts it lacks through sink
// instead of their being added to the result (see PartsSink).
func BuildReceivingParts(sink PartsSink) BuildFunc {
	return func(ctx context.Context, c client.Client) (*client.Result, error) {
		return build(ctx, c, sink)
	}
}

func build(ctx context.Context, c client.Client, sink PartsSink) (*client.Result, error) {
	ac, err := withContextAliases(c)
	if err != nil {
		return nil, err
	}
	bc, err := dockerui.NewClient(ac)
	if err != nil {
		return nil, err
	}
	if res, ok, err := handleSubrequest(ctx, ac, bc); err != nil || ok {
		return res, err
	}
	if err := logVersion(ctx, c); err != nil {
		return nil, fmt.Errorf("showing the frontend's version: %w", err)
	}
	src, cfg, smaps, err := loadConfig(ctx, c, bc)
	if err != nil {
		return nil, err
	}
	args, err := parseArgs(bc.Target, bc.BuildArgs, src.Filename)
	if err != nil {
		return nil, err
	}
	req, err := newRequest(ctx, c, bc, src, cfg, smaps, args)
	if err != nil {
		return nil, err
	}
	req.partsSink = sink
	if err := req.prepare(ctx); err != nil {
		return nil, err
	}
	rb, err := bc.Build(ctx, req.build)
	if err != nil {
		return nil, err
	}
	if bc.SBOM != nil {
		if err := req.sboms.attest(ctx, c, rb, req.constraints); err != nil {
			return nil, err
		}
	}
	return rb.Finalize()
}

// warnAt passes llbgen's warnings to BuildKit with their YAML lines, as
// the Dockerfile frontend reports lint warnings.
func warnAt(ctx context.Context, src *dockerui.Source, smaps map[string]*llb.SourceMap) func(llbgen.Warning) {
	return func(w llbgen.Warning) {
		opts := client.WarnOpts{Level: 1}
		if sm := smaps[w.Pos.File]; sm != nil && w.Pos.Line > 0 {
			opts.SourceInfo = &pb.SourceInfo{Filename: sm.Filename, Data: sm.Data, Language: sm.Language}
			if sm.Definition != nil {
				opts.SourceInfo.Definition = sm.Definition.ToPB()
			}
			at := &pb.Position{Line: int32(w.Pos.Line), Character: int32(w.Pos.Col)}
			opts.Range = []*pb.Range{{Start: at, End: at}}
		}
		src.Warn(ctx, w.String(), opts)
	}
}

// helperImage returns the image that runs `lkbuild mkimage`: the one named
// by the helper-image option, else the frontend's own image.
func helperImage(c client.Client, buildPlatform ocispecs.Platform) (*llb.State, error) {
	if ref := c.BuildOpts().Opts[OptHelperImage]; ref != "" {
		st := llb.Image(ref, llb.Platform(buildPlatform), llb.WithCustomName("[internal] lkbuild helper "+ref))
		return &st, nil
	}
	if cf, ok := c.(interface{ CurrentFrontend() (*llb.State, error) }); ok {
		st, err := cf.CurrentFrontend()
		if err != nil {
			return nil, fmt.Errorf("loading the frontend image as helper: %w", err)
		}
		if st != nil {
			return st, nil
		}
	}
	return nil, nil
}

func listTargets(context.Context) (*targets.List, error) {
	l := &targets.List{}
	for _, t := range formats.All() {
		l.Targets = append(l.Targets, targets.Target{
			Name:        t.Name,
			Description: t.Summary(),
			Default:     t.Name == formats.Default,
		})
	}
	return l, nil
}

// readMerged reads the MERGE files, named relative to dir (the main YAML's
// directory in the local source), from the same local source as the main
// YAML: the "dockerfile" local, which is the -f file's directory with
// buildx and the directory holding all the YAML files with lkbuild build.
func readMerged(ctx context.Context, c client.Client, dir string, names []string) ([]*llb.SourceMap, error) {
	files, err := mergePaths(dir, names)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	st := llb.Local(dockerui.DefaultLocalNameDockerfile,
		llb.FollowPaths(followPatterns(files)),
		llb.SessionID(c.BuildOpts().SessionID),
		llb.SharedKeyHint(dockerui.DefaultLocalNameDockerfile),
		dockerui.WithInternalName("load merged YAML "+strings.Join(files, ", ")),
		llb.Differ(llb.DiffNone, false))
	def, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, fmt.Errorf("reading the %s files: %w", ArgMerge, err)
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, err
	}
	var out []*llb.SourceMap
	for _, f := range files {
		dt, err := ref.ReadFile(ctx, client.ReadRequest{Filename: f})
		if err != nil {
			return nil, fmt.Errorf("build-arg %s: reading %s: %w", ArgMerge, f, err)
		}
		sm := llb.NewSourceMap(&st, f, "yaml", dt)
		sm.Definition = def
		out = append(out, sm)
	}
	return out, nil
}

// withSource attaches the YAML lines of spec errors to err, so buildx
// prints them under the message (the file of the first error).
func withSource(err error, smaps map[string]*llb.SourceMap) error {
	var list []*spec.Error
	var errs spec.Errors
	var one *spec.Error
	switch {
	case errors.As(err, &errs):
		list = errs
	case errors.As(err, &one):
		list = []*spec.Error{one}
	}
	if len(list) == 0 {
		return err
	}
	sm := smaps[list[0].File]
	if sm == nil {
		return err
	}
	var ranges []*pb.Range
	for _, e := range list {
		if e.File == list[0].File {
			ranges = append(ranges, lineRange(e))
		}
	}
	info := &pb.SourceInfo{Filename: sm.Filename, Data: sm.Data, Language: sm.Language}
	if sm.Definition != nil {
		info.Definition = sm.Definition.ToPB()
	}
	return errdefs.WithSource(err, &errdefs.Source{Info: info, Ranges: ranges})
}

func lineRange(e *spec.Error) *pb.Range {
	return &pb.Range{
		Start: &pb.Position{Line: int32(e.Line), Character: int32(e.Col)},
		End:   &pb.Position{Line: int32(e.Line), Character: int32(e.Col)},
	}
}

// resolveSources follows the symlinks of the files' sources in the build
// context st, which holds the sources inside it (llbgen.ResolveSources).
// The context is solved at the first lookup (never when no source is
// inside it), and each directory is listed once.
func resolveSources(ctx context.Context, c client.Client, cfg *spec.Config, st *llb.State, warn func(llbgen.Warning)) (map[string]string, error) {
	var ref client.Reference
	solved := false
	dirs := map[string]map[string]*fstypes.Stat{}
	lstat := func(ctx context.Context, p string) (llbgen.ContextEntry, error) {
		if st == nil { // no source inside the context: nothing was transferred
			return llbgen.ContextEntry{}, fs.ErrNotExist
		}
		if !solved {
			r, err := solveState(ctx, c, st)
			if err != nil {
				return llbgen.ContextEntry{}, fmt.Errorf("reading the build context: %w", err)
			}
			ref, solved = r, true
		}
		dir, name := path.Split(p)
		ents, ok := dirs[dir]
		if !ok {
			ents = map[string]*fstypes.Stat{}
			if ref != nil { // nil: an empty context
				list, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: "/" + dir})
				if err != nil {
					return llbgen.ContextEntry{}, err
				}
				for _, e := range list {
					ents[path.Base(e.Path)] = e
				}
			}
			dirs[dir] = ents
		}
		e, ok := ents[name]
		if !ok {
			return llbgen.ContextEntry{}, fs.ErrNotExist
		}
		return llbgen.ContextEntry{Mode: os.FileMode(e.Mode), Linkname: e.Linkname}, nil
	}
	return llbgen.ResolveSources(ctx, cfg, lstat, warn)
}

// solveState solves st and returns its single result.
func solveState(ctx context.Context, c client.Client, st *llb.State) (client.Reference, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	return res.SingleRef()
}

// needsContext reports whether files are read from the build context.
func needsContext(cfg *spec.Config) bool {
	for _, f := range cfg.Files {
		if f.Source != "" {
			return true
		}
	}
	return false
}
