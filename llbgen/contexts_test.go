package llbgen

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// contextsFor provides every ref of configs from a local directory named
// "ctx/<ref>", with that config (nil: none) for the platform asked, and
// counts the lookups.
type contextsFor struct {
	mu      sync.Mutex
	configs map[string]*ocispecs.Image
	asked   map[string]int
}

func (c *contextsFor) lookup(ctx context.Context, ref string, p ocispecs.Platform) (*NamedImage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.asked == nil {
		c.asked = map[string]int{}
	}
	c.asked[ref]++
	img, ok := c.configs[ref]
	if !ok {
		return nil, nil
	}
	ni := &NamedImage{State: llb.Local("ctx/" + ref)}
	if img != nil {
		cfg := *img
		if cfg.OS == "" {
			cfg.Platform = p
		}
		dt, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		ni.Config = dt
	}
	return ni, nil
}

// TestNamedContextsReplaceImages: an image a named build context provides
// is neither resolved nor pulled from a registry, whatever kind of entry
// uses it: its contents are the context's state and its config (the
// command of a bundle) is the context's. An image without a context still
// comes from the registry.
func TestNamedContextsReplaceImages(t *testing.T) {
	cfg, err := spec.Parse("every.yml", []byte(everyKind))
	if err != nil {
		t.Fatal(err)
	}
	c := &contextsFor{configs: map[string]*ocispecs.Image{}}
	for _, ref := range []string{"example.com/k:1", "example.com/i:1", "example.com/o:1", "example.com/s:1", "example.com/f:1", "example.com/c:1", "example.com/p:1"} {
		c.configs[ref] = &ocispecs.Image{Config: ocispecs.ImageConfig{Cmd: []string{"/from-context", ref}}}
	}
	delete(c.configs, "example.com/v:1") // the service's image comes from the registry
	r := &fakeResolver{}
	o := options(r)
	o.Target = "tar"
	o.Contexts = c.lookup
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	for ref := range c.configs {
		if r.asked[ref] != 0 {
			t.Errorf("%s: resolved %d times in the registry, want never", ref, r.asked[ref])
		}
	}
	if r.asked["example.com/v:1"] != 1 {
		t.Errorf("example.com/v:1 (no context): resolved %d times, want once", r.asked["example.com/v:1"])
	}
	locals := map[string]bool{}
	var onbootCmd bool
	for _, op := range ops(t, res.Output) {
		if id := op.GetSource().GetIdentifier(); id != "" {
			if strings.HasPrefix(id, "docker-image://example.com/") && !strings.HasPrefix(id, "docker-image://example.com/v:1@") {
				t.Errorf("source %s: the image has a build context", id)
			}
			if name, ok := strings.CutPrefix(id, "local://ctx/"); ok {
				locals[name] = true
			}
		}
		for _, a := range op.GetFile().GetActions() {
			if mf := a.GetMkfile(); mf != nil && strings.Contains(mf.GetPath(), "ob/config.json") {
				onbootCmd = strings.Contains(string(mf.GetData()), `"/from-context"`)
			}
		}
	}
	for ref := range c.configs {
		if !locals[ref] {
			t.Errorf("%s: no source from its build context (sources from contexts: %v)", ref, locals)
		}
	}
	if !onbootCmd {
		t.Error("the onboot bundle's config does not run the command of the context's image config")
	}
}

// TestNamedContextPlatform: the platform check uses the config of the
// named context (an arm64 image for an amd64 build fails at its YAML
// position); a context without a config (a local directory) is taken as
// being for the platform asked, without a warning.
func TestNamedContextPlatform(t *testing.T) {
	cfg, err := spec.Parse("every.yml", []byte("init:\n  - example.com/i:1\nonboot:\n  - name: ob\n    image: example.com/o:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	arm := ocispecs.Image{Platform: ocispecs.Platform{OS: "linux", Architecture: "arm64"}}
	c := &contextsFor{configs: map[string]*ocispecs.Image{"example.com/i:1": &arm, "example.com/o:1": nil}}
	o := options(&fakeResolver{})
	o.Target = "tar"
	o.Contexts = c.lookup
	var warnings []string
	o.Warn = func(w Warning) { warnings = append(warnings, w.String()) }
	_, err = Prepare(context.Background(), cfg, o)
	if err == nil || !strings.Contains(err.Error(), "every.yml:2:5: init[0]: image example.com/i:1 is for linux/arm64, not for linux/amd64") {
		t.Errorf("err = %v, want the init image's context config refused for linux/arm64", err)
	}
	delete(c.configs, "example.com/i:1")
	if _, err := Prepare(context.Background(), cfg, o); err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings %q for a context without a config", warnings)
	}
}

// TestNamedContextInMergedFile: an image that only a later merged file
// uses is looked up among the named contexts like the others.
func TestNamedContextInMergedFile(t *testing.T) {
	cfg, err := spec.Load(
		spec.Source{Filename: "base.yml", Data: []byte("init:\n  - example.com/i:1\n")},
		spec.Source{Filename: "extra.yml", Data: []byte("services:\n  - name: svc\n    image: example.com/merged:1\n    command: [/bin/svc]\n")},
	)
	if err != nil {
		t.Fatal(err)
	}
	c := &contextsFor{configs: map[string]*ocispecs.Image{"example.com/merged:1": nil}}
	r := &fakeResolver{}
	o := options(r)
	o.Target = "tar"
	o.Contexts = c.lookup
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if c.asked["example.com/merged:1"] != 1 || r.asked["example.com/merged:1"] != 0 {
		t.Errorf("merged file's image: %d context lookups and %d registry resolutions, want 1 and 0",
			c.asked["example.com/merged:1"], r.asked["example.com/merged:1"])
	}
	found := false
	for _, op := range ops(t, res.Output) {
		found = found || op.GetSource().GetIdentifier() == "local://ctx/example.com/merged:1"
	}
	if !found {
		t.Error("the merged file's image does not come from its build context")
	}
}
