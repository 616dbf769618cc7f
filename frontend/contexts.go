package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/lkbuild/lkbuild/llbgen"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// contextPrefix starts the frontend options that name build contexts
// (buildx --build-context NAME=VALUE sends context:NAME=VALUE).
const contextPrefix = "context:"

// aliasedContexts is c whose build options also name each build context
// keyed by an image reference under the reference's short form
// (docker.io/linuxkit/init:abc as linuxkit/init:abc), the form under which
// dockerui looks contexts up: a context keyed by either form then provides
// the image however the YAML writes it.
type aliasedContexts struct {
	client.Client
	opts client.BuildOpts
}

// BuildOpts returns the build options with the aliases.
func (c *aliasedContexts) BuildOpts() client.BuildOpts { return c.opts }

// withContextAliases returns c with the short form of every build context
// named by an image reference added, or an error when two contexts name the
// same image with different values.
func withContextAliases(c client.Client) (client.Client, error) {
	bopts := c.BuildOpts()
	opts := maps.Clone(bopts.Opts)
	from := map[string]string{}
	for k, v := range bopts.Opts {
		name, ok := strings.CutPrefix(k, contextPrefix)
		if !ok {
			continue
		}
		short, ok := shortContextName(name)
		if !ok || short == name {
			continue
		}
		key := contextPrefix + short
		if old, ok := opts[key]; ok && old != v {
			other := short
			if f, ok := from[key]; ok {
				other = f
			}
			return nil, fmt.Errorf("build contexts %s and %s name the same image with different values (%q and %q)", other, name, old, v)
		}
		opts[key], from[key] = v, name
		if sk, ok := bopts.Opts["sharedkey:localdir:"+name]; ok {
			opts["sharedkey:localdir:"+short] = sk
		}
	}
	bopts.Opts = opts
	return &aliasedContexts{Client: c, opts: bopts}, nil
}

// shortContextName returns the form under which dockerui looks up the
// context for an image reference name (with an optional ::platform
// suffix): the familiar name without :latest.
func shortContextName(name string) (string, bool) {
	ref, plat, _ := strings.Cut(name, "::")
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", false
	}
	short := strings.TrimSuffix(reference.FamiliarString(named), ":latest")
	if plat != "" {
		short += "::" + plat
	}
	return short, true
}

// imageContexts looks images up among the named build contexts, as the
// Dockerfile frontend does for FROM: by the reference as the YAML writes
// it, and by its normalised form. A context of another image
// (docker-image://), an OCI layout (oci-layout://), a frontend input
// (input:) or a local directory replaces the image; only the first three
// have an image config.
func imageContexts(bc *dockerui.Client, resolveMode string) llbgen.ImageContexts {
	// dockerui may rewrite its options while loading a context (a source
	// policy turning an image into another kind of source): one at a time.
	var mu sync.Mutex
	return func(ctx context.Context, ref string, p ocispecs.Platform) (*llbgen.NamedImage, error) {
		mu.Lock()
		defer mu.Unlock()
		nc, err := bc.NamedContext(ref, dockerui.ContextOpt{Platform: &p, ResolveMode: resolveMode})
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		if nc == nil {
			return nil, nil
		}
		st, img, err := nc.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("loading its build context: %w", err)
		}
		if st == nil {
			return nil, nil
		}
		ni := &llbgen.NamedImage{State: *st}
		if img != nil {
			if ni.Config, err = json.Marshal(img); err != nil {
				return nil, err
			}
		}
		return ni, nil
	}
}
