package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"path"
	"strings"

	"github.com/containerd/platforms"
	"github.com/lkbuild/lkbuild/internal/version"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/frontend/subrequests"
	"github.com/moby/buildkit/frontend/subrequests/lint"
	"github.com/moby/buildkit/frontend/subrequests/outline"
	"github.com/moby/buildkit/frontend/subrequests/targets"
	"github.com/moby/buildkit/solver/errdefs"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Subrequests (`docker buildx build --call NAME`): targets, outline and
// check (lint) as the Dockerfile frontend answers them, and lkbuild's own
// lkbuild.schema. None of them builds anything; targets, outline and
// lkbuild.schema do not read the YAML, so they answer whatever it holds.

// RequestSchema is the subrequest of `--call lkbuild.schema` (buildx
// prefixes the name with "frontend.").
const RequestSchema = "frontend.lkbuild.schema"

// schemaDefinition describes RequestSchema for subrequests.describe.
var schemaDefinition = subrequests.Request{
	Name:        RequestSchema,
	Version:     "1.0.0",
	Type:        subrequests.TypeRPC,
	Description: "JSON schema of the LinuxKit YAML, for editors (yaml-language-server)",
	Metadata:    []subrequests.Named{{Name: "result.json"}, {Name: "result.txt"}},
}

const keyRequestID = "requestid"

// handleSubrequest answers the subrequest the build asks for, if any: ok
// is false for a build.
func handleSubrequest(ctx context.Context, c client.Client, bc *dockerui.Client) (*client.Result, bool, error) {
	opts := c.BuildOpts().Opts
	switch opts[keyRequestID] {
	case "":
		return nil, false, nil
	case subrequests.RequestSubrequestsDescribe:
		res, err := describe()
		return res, true, err
	case RequestSchema:
		return schemaResult(), true, nil
	}
	res, ok, err := bc.HandleSubrequest(ctx, dockerui.RequestHandler{
		ListTargets: listTargets,
		Outline:     outlineHandler(bc.Target, opts["filename"]),
		Lint: func(ctx context.Context) (*lint.LintResults, error) {
			return check(ctx, c, bc)
		},
	})
	if err == nil && !ok {
		err = errdefs.NewUnsupportedSubrequestError(opts[keyRequestID])
	}
	return res, ok, err
}

// describe lists the subrequests lkbuild answers (dockerui's own list
// leaves out lint).
func describe() (*client.Result, error) {
	check := lint.SubrequestLintDefinition
	check.Description = "Check a LinuxKit YAML (docs/check.md)"
	all := []subrequests.Request{outline.SubrequestsOutlineDefinition, targets.SubrequestsTargetsDefinition,
		check, schemaDefinition, subrequests.SubrequestsDescribeDefinition}
	dt, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := subrequests.PrintDescribe(dt, &b); err != nil {
		return nil, err
	}
	res := client.NewResult()
	res.AddMeta("result.json", dt)
	res.AddMeta("result.txt", b.Bytes())
	res.AddMeta("version", []byte(subrequests.SubrequestsDescribeDefinition.Version))
	return res, nil
}

// schemaResult is the answer to lkbuild.schema: the schema as JSON (buildx
// prints result.txt, or result.json with format=json).
func schemaResult() *client.Result {
	s := spec.Schema()
	res := client.NewResult()
	res.AddMeta("result.json", s)
	res.AddMeta("result.txt", s)
	res.AddMeta("version", []byte(schemaDefinition.Version))
	return res
}

// check answers `--call check`: it reads the YAML files (the -f file and
// the MERGE files) and runs every rule over them, resolving the images'
// configs for the first target platform.
func check(ctx context.Context, c client.Client, bc *dockerui.Client) (*lint.LintResults, error) {
	src, err := bc.ReadEntrypoint(ctx, "yaml")
	if err != nil {
		return nil, err
	}
	srcs, smaps, err := loadSources(ctx, c, bc, src)
	if err != nil {
		return nil, err
	}
	platform := defaultPlatform(bc)
	resolve := gatewayResolver(c, imageContexts(bc, bc.ImageResolveMode.String()), bc.ImageResolveMode.String())
	return checkResults(ctx, srcs, smaps, platform, resolve)
}

// loadSources returns the YAML files of the build: the -f file (src) and
// the MERGE files after it, with their source maps by file name.
func loadSources(ctx context.Context, c client.Client, bc *dockerui.Client, src *dockerui.Source) ([]spec.Source, map[string]*llb.SourceMap, error) {
	srcs := []spec.Source{{Filename: src.Filename, Data: src.Data}}
	smaps := map[string]*llb.SourceMap{src.Filename: lfSourceMap(src.SourceMap)}
	if m := bc.BuildArgs[ArgMerge]; m != "" {
		more, err := readMerged(ctx, c, path.Dir(src.Filename), strings.Split(m, ","))
		if err != nil {
			return nil, nil, err
		}
		for _, sm := range more {
			srcs = append(srcs, spec.Source{Filename: sm.Filename, Data: sm.Data})
			smaps[sm.Filename] = lfSourceMap(sm)
		}
	}
	return srcs, smaps, nil
}

// defaultPlatform is the first target platform, else the build platform.
func defaultPlatform(bc *dockerui.Client) ocispecs.Platform {
	if len(bc.TargetPlatforms) > 0 {
		return bc.TargetPlatforms[0]
	}
	if len(bc.BuildPlatforms) > 0 {
		return bc.BuildPlatforms[0]
	}
	return platforms.DefaultSpec()
}

// logVersion shows the frontend's version in the build's progress, as a
// step of its own: a file op on scratch that costs nothing and is cached
// after the first build.
func logVersion(ctx context.Context, c client.Client) error {
	v := version.Get()
	st := llb.Scratch().File(llb.Mkfile("/version", 0o644, []byte(v.String())),
		llb.WithCustomName("[internal] lkbuild "+v.Short()))
	def, err := st.Marshal(ctx)
	if err != nil {
		return err
	}
	_, err = c.Solve(ctx, client.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	return err
}
