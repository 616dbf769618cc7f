package llbgen

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// NamedImage is an image that a named build context provides in place of
// the registry (buildx's --build-context, lkbuild build's --build-context):
// an image in a local OCI layout, another image, a frontend input or a
// local directory.
type NamedImage struct {
	// State is the image's root filesystem.
	State llb.State
	// Config is the image config JSON; nil when the context has none (a
	// local directory): the image then has no entrypoint, command,
	// environment or labels, and is taken as being for the platform asked.
	Config []byte
}

// ImageContexts returns the named build context that provides the image
// ref (as written in the YAML) for platform p, or nil when no context
// names it. The frontend implements it with dockerui's named contexts.
type ImageContexts func(ctx context.Context, ref string, p ocispecs.Platform) (*NamedImage, error)

// fromContext makes a resolvedImage of the named context ni providing ref
// for platform p.
func fromContext(ref string, p ocispecs.Platform, ni *NamedImage) (*resolvedImage, error) {
	ri := &resolvedImage{Ref: ref, Platform: p, Found: p, State: &ni.State, Raw: ni.Config}
	if ni.Config == nil {
		// For the oci volume helper, which needs a config to write.
		dt, err := json.Marshal(ocispecs.Image{Platform: p})
		if err != nil {
			return nil, err
		}
		ri.Raw = dt
		return ri, nil
	}
	var img ocispecs.Image
	if err := json.Unmarshal(ni.Config, &img); err != nil {
		return nil, fmt.Errorf("image %s: build context: parsing config: %w", ref, err)
	}
	ri.Found = img.Platform
	ri.Config = spec.ImageConfig{
		Entrypoint: img.Config.Entrypoint,
		Cmd:        img.Config.Cmd,
		Env:        img.Config.Env,
		WorkingDir: img.Config.WorkingDir,
		Labels:     img.Config.Labels,
	}
	return ri, nil
}
