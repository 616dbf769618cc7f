package frontend

import (
	"context"
	"strings"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/buildarg"
	"github.com/moby/buildkit/frontend/subrequests/outline"
)

// BuildArg is a build-arg the frontend reads, as `--call outline` lists it.
type BuildArg struct {
	Name        string
	Description string
	// Default is the value used when the build-arg is not set ("" when
	// unset means no value: the description says what happens then).
	Default string
}

// BuildArgs are the build-args the frontend reads, in the order `--call
// outline` and `lkbuild build --help` list them. A new build-arg is one
// more entry here.
var BuildArgs = []BuildArg{
	{Name: ArgName, Description: "base name of the artifacts (LinuxKit's -name): one plain file name; default: the YAML file's name without its extension"},
	{Name: ArgSize, Description: "size of the disk formats (LinuxKit's --size), e.g. 2G, 512M (no suffix: MiB), at most 2T; default: as small as the contents allow (\"size\" is read too)"},
	{Name: ArgMerge, Description: "more YAML files, comma separated, relative to the -f file's directory, merged after it in order (linuxkit build a.yml b.yml)"},
	{Name: ArgSourceDateEpoch, Description: "seconds since 1970 (0 to 4294967295) for the timestamps of created files and the clamp of artifact timestamps; default: LinuxKit's fixed time (2017-04-18 16:30 UTC) for created files and no clamp"},
	{Name: ArgSBOM, Description: "the SPDX SBOM /sbom.spdx.json in the root filesystem: " + buildarg.BoolValues + "; true or 1 (the default) writes it, false or 0 leaves it out (LinuxKit's --no-sbom); the attestation buildx asks for with --sbom=true is not affected", Default: "true"},
}

// BuildArgNames are the names of BuildArgs.
func BuildArgNames() []string {
	names := make([]string, len(BuildArgs))
	for i, a := range BuildArgs {
		names[i] = a.Name
	}
	return names
}

// outlineOf is the answer to `--call outline` for a build of target from
// the YAML file filename: the build-args with their descriptions and
// defaults (NAME's default depends on the file name).
func outlineOf(target, filename string) *outline.Outline {
	if target == "" {
		target = formats.Default
	}
	o := &outline.Outline{Name: target}
	summaries := map[string]string{}
	for _, t := range formats.All() {
		summaries[t.Name] = t.Summary()
	}
	var descs []string
	for _, name := range strings.Split(target, ",") {
		name = strings.TrimSpace(name)
		if s, ok := summaries[name]; ok {
			descs = append(descs, s)
		} else {
			descs = append(descs, "unknown target "+name)
		}
	}
	o.Description = strings.Join(descs, "; ")
	for _, a := range BuildArgs {
		v := a.Default
		if a.Name == ArgName && filename != "" {
			if n, err := parseName("", filename); err == nil {
				v = n
			}
		}
		o.Args = append(o.Args, outline.Arg{Name: a.Name, Description: a.Description, Value: v})
	}
	return o
}

func outlineHandler(target, filename string) func(context.Context) (*outline.Outline, error) {
	return func(context.Context) (*outline.Outline, error) { return outlineOf(target, filename), nil }
}
