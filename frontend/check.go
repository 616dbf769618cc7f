package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/distribution/reference"
	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/frontend/subrequests/lint"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// `--call check`: the rules of spec.Lint over the YAML, and the rules that
// need the images' configs, which check resolves through the gateway
// (configs only: no layer is fetched). An error in the YAML is a result of
// the check (rule InvalidYAML, at its position), not a failed call.

// The rules of the frontend (the YAML-only ones are spec.LintRules).
var (
	RuleInvalidYAML = &spec.LintRule{Name: "InvalidYAML",
		Description: "The YAML does not load: a syntax error, an unknown field, a wrong type or a value LinuxKit refuses. The build would fail with this error."}
	RuleMissingCommand = &spec.LintRule{Name: "MissingCommand",
		Description: "A container has no command: neither the YAML entry, nor the image's org.mobyproject.config label, nor the image's Entrypoint and Cmd give one, so runc cannot start it at boot."}
	RuleUnresolvedImage = &spec.LintRule{Name: "UnresolvedImage",
		Description: "An image's config could not be resolved (not in the registry, or no manifest for the platform), so the rules that read image configs could not check the entries using it. The build would fail too."}
)

// CheckRules are every rule `--call check` applies.
func CheckRules() []*spec.LintRule {
	return append([]*spec.LintRule{RuleInvalidYAML}, append(append([]*spec.LintRule(nil), spec.LintRules...), RuleMissingCommand, RuleUnresolvedImage)...)
}

// ImageConfigResolver returns the config of an image for a platform (nil
// when it cannot be known: the entries using it are not checked), or an
// error.
type ImageConfigResolver func(ctx context.Context, ref string, p ocispecs.Platform) (*ocispecs.Image, error)

// checkResults runs every check over the YAML files and returns the
// warnings with their sources, as buildx prints them (the YAML lines under
// each warning). Each warning's detail starts with its position
// (file:line:col), as the build's errors and warnings do: buildx prints
// the lines of every source under the name of the -f file (it renames
// them all to the path it was given), so only the detail names a MERGE
// file in its text output. resolve may be nil: then the rules needing
// image configs are skipped.
func checkResults(ctx context.Context, srcs []spec.Source, smaps map[string]*llb.SourceMap, p ocispecs.Platform, resolve ImageConfigResolver) (*lint.LintResults, error) {
	res := &lint.LintResults{Warnings: []lint.Warning{}, Sources: []*pb.SourceInfo{}}
	index := map[string]int{}
	add := func(r *spec.LintRule, pos spec.Pos, detail string) {
		loc := &pb.Location{SourceIndex: -1}
		if sm := smaps[pos.File]; sm != nil && pos.Line > 0 {
			i, ok := index[pos.File]
			if !ok {
				info := &pb.SourceInfo{Filename: sm.Filename, Data: sm.Data, Language: sm.Language}
				if sm.Definition != nil {
					info.Definition = sm.Definition.ToPB()
				}
				i = len(res.Sources)
				res.Sources = append(res.Sources, info)
				index[pos.File] = i
			}
			at := &pb.Position{Line: int32(pos.Line), Character: int32(pos.Col)}
			loc = &pb.Location{SourceIndex: int32(i), Ranges: []*pb.Range{{Start: at, End: at}}}
		}
		if pos.File != "" && pos.Line > 0 {
			detail = pos.String() + ": " + detail
		}
		res.Warnings = append(res.Warnings, lint.Warning{RuleName: r.Name, Description: r.Description, Detail: detail, Location: loc})
	}

	ws, err := spec.Lint(srcs...)
	if err != nil {
		var errs spec.Errors
		var one *spec.Error
		switch {
		case errors.As(err, &errs):
		case errors.As(err, &one):
			errs = spec.Errors{one}
		default:
			return nil, err
		}
		for _, e := range errs {
			add(RuleInvalidYAML, spec.Pos{File: e.File, Line: e.Line, Col: e.Col}, detail(e.Field, e.Msg))
		}
		return res, nil
	}
	for _, w := range ws {
		add(w.Rule, w.Pos, detail(w.Field, w.Msg))
	}
	if resolve == nil {
		return res, nil
	}
	cfg, err := spec.Load(srcs...)
	if err != nil {
		return nil, err // Lint loaded it: not reached
	}
	for _, w := range missingCommands(ctx, cfg, p, resolve) {
		add(w.Rule, w.Pos, detail(w.Field, w.Msg))
	}
	return res, nil
}

// detail is a warning's text after its position: the field path and the
// message.
func detail(field, msg string) string {
	if field == "" {
		return msg
	}
	return field + ": " + msg
}

// missingCommands warns at each container whose command comes from
// nowhere (rule MissingCommand), resolving the configs of the images of
// the entries without a command in the YAML (or with command: []), each
// once.
func missingCommands(ctx context.Context, cfg *spec.Config, p ocispecs.Platform, resolve ImageConfigResolver) []spec.Warning {
	type entry struct {
		section string
		img     *spec.Image
	}
	var todo []entry
	refs := map[string]bool{}
	for _, s := range []struct {
		name string
		list []*spec.Image
	}{{"onboot", cfg.Onboot}, {"onshutdown", cfg.Onshutdown}, {"services", cfg.Services}} {
		for _, img := range s.list {
			if img.Command == nil || len(*img.Command) == 0 {
				todo = append(todo, entry{s.name, img})
				refs[img.Image] = true
			}
		}
	}
	type resolved struct {
		img *ocispecs.Image
		err error
	}
	configs := map[string]resolved{}
	var mu sync.Mutex
	var eg errgroup.Group
	eg.SetLimit(8)
	for ref := range refs {
		eg.Go(func() error {
			img, err := resolve(ctx, ref, p)
			mu.Lock()
			configs[ref] = resolved{img, err}
			mu.Unlock()
			return nil
		})
	}
	_ = eg.Wait()

	ids := spec.IDs(cfg)
	var out []spec.Warning
	reported := map[string]bool{}
	for _, e := range todo {
		r := configs[e.img.Image]
		pos := e.img.Loc.At("image")
		switch {
		case r.err != nil:
			if !reported[e.img.Image] {
				reported[e.img.Image] = true
				out = append(out, spec.Warning{Rule: RuleUnresolvedImage, Pos: pos, Field: e.img.Loc.Field + ".image",
					Msg: fmt.Sprintf("cannot resolve the image's config: %v", r.err)})
			}
			continue
		case r.img == nil:
			continue
		}
		ic := spec.ImageConfig{Entrypoint: r.img.Config.Entrypoint, Cmd: r.img.Config.Cmd, Env: r.img.Config.Env,
			WorkingDir: r.img.Config.WorkingDir, Labels: r.img.Config.Labels}
		oci, _, err := spec.ConfigToOCI(e.img, ic, ids)
		if err != nil || oci.Process == nil || len(oci.Process.Args) > 0 {
			continue // an error in a label is the build's to report
		}
		out = append(out, spec.Warning{Rule: RuleMissingCommand, Pos: pos, Field: e.img.Loc.Field + ".image",
			Msg: fmt.Sprintf("%s %s has no command: the entry gives none, nor does the %s label or the Entrypoint and Cmd of image %s, so runc cannot start it (add command: [...])",
				e.section, e.img.Name, spec.LabelConfig, e.img.Image)})
	}
	return out
}

// gatewayResolver resolves image configs through the gateway, after the
// named build contexts (--build-context) as the build does.
func gatewayResolver(c client.Client, contexts llbgen.ImageContexts, resolveMode string) ImageConfigResolver {
	return func(ctx context.Context, ref string, p ocispecs.Platform) (*ocispecs.Image, error) {
		if contexts != nil {
			ni, err := contexts(ctx, ref, p)
			if err != nil {
				return nil, err
			}
			if ni != nil {
				if len(ni.Config) == 0 {
					// no config (a local directory): no command, as
					// the build takes it
					return &ocispecs.Image{}, nil
				}
				var img ocispecs.Image
				if err := json.Unmarshal(ni.Config, &img); err != nil {
					return nil, fmt.Errorf("parsing its config: %w", err)
				}
				return &img, nil
			}
		}
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return nil, err
		}
		named = reference.TagNameOnly(named)
		_, _, dt, err := c.ResolveImageConfig(ctx, named.String(), sourceresolver.Opt{
			LogName:  "[check] load metadata for " + named.String(),
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p, ResolveMode: resolveMode},
		})
		if err != nil {
			return nil, err
		}
		var img ocispecs.Image
		if err := json.Unmarshal(dt, &img); err != nil {
			return nil, fmt.Errorf("parsing its config: %w", err)
		}
		return &img, nil
	}
}
