package llbgen

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sync"

	"github.com/distribution/reference"
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// resolvedImage is an image ref pinned to the digest the registry returned,
// with the parts of its config that bundles need.
type resolvedImage struct {
	Ref    string // as written in the YAML
	Pinned string // normalized name@digest
	Config spec.ImageConfig
	// Raw is the image's config JSON as the registry returned it.
	Raw []byte
	// Platform is the platform asked for; Found is the one the config
	// names (empty fields when it names none).
	Platform, Found ocispecs.Platform
	// NoMatch is set when the ref is an index without a manifest for
	// Platform; the other fields but Ref are then empty.
	NoMatch bool
	// State is set when a named build context provides the image (then
	// Pinned is empty).
	State *llb.State
}

// resolveImages resolves every ref concurrently for the target platform.
func resolveImages(ctx context.Context, refs []string, opt Options) (map[string]*resolvedImage, error) {
	out := make(map[string]*resolvedImage, len(refs))
	var mu sync.Mutex
	eg, ctx := errgroup.WithContext(ctx)
	for _, ref := range refs {
		eg.Go(func() error {
			ri, err := resolveImage(ctx, ref, opt.TargetPlatform, opt)
			if err != nil {
				return err
			}
			mu.Lock()
			out[ref] = ri
			mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func resolveImage(ctx context.Context, ref string, p ocispecs.Platform, opt Options) (*resolvedImage, error) {
	if opt.Contexts != nil {
		ni, err := opt.Contexts(ctx, ref, p)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		if ni != nil {
			return fromContext(ref, p, ni)
		}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	named = reference.TagNameOnly(named)
	resolved, dgst, dt, err := opt.Resolver.ResolveImageConfig(ctx, named.String(), sourceresolver.Opt{
		LogName: fmt.Sprintf("[internal] load metadata for %s", named.String()),
		ImageOpt: &sourceresolver.ResolveImageOpt{
			Platform:    &p,
			ResolveMode: opt.ResolveMode,
		},
	})
	if errNoPlatformMatch(err) {
		// reported with the YAML entries using the image by checkPlatforms
		return &resolvedImage{Ref: ref, Platform: p, NoMatch: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolving image %s: %w", ref, err)
	}
	var img ocispecs.Image
	if err := json.Unmarshal(dt, &img); err != nil {
		return nil, fmt.Errorf("image %s: parsing config: %w", ref, err)
	}
	pinned := named.String()
	if resolved != "" {
		pinned = resolved
	}
	if dgst != "" {
		if n, err := reference.ParseNormalizedNamed(pinned); err == nil {
			if c, err := reference.WithDigest(n, dgst); err == nil {
				pinned = c.String()
			}
		}
	}
	return &resolvedImage{
		Ref:      ref,
		Pinned:   pinned,
		Raw:      dt,
		Platform: p,
		Found:    img.Platform,
		Config: spec.ImageConfig{
			Entrypoint: img.Config.Entrypoint,
			Cmd:        img.Config.Cmd,
			Env:        img.Config.Env,
			WorkingDir: img.Config.WorkingDir,
			Labels:     img.Config.Labels,
		},
	}, nil
}

// source returns the image as an LLB source for the target platform: the
// named build context's state when one provides it.
func (b *builder) source(ref string, name string) llb.State {
	return imageState(b.images[ref], name)
}

// imageState returns ri's root filesystem for its platform.
func imageState(ri *resolvedImage, name string) llb.State {
	if ri.State != nil {
		return *ri.State
	}
	return llb.Image(ri.Pinned, llb.Platform(ri.Platform), llb.WithCustomName(name))
}

// Paths LinuxKit drops from every image: files Docker adds to containers
// and device nodes that belong to the running system.
var excludedPaths = []string{".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab"}

// hostsFile replaces every image's etc/hosts.
const hostsFile = `127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`

// resolvConf replaces the resolv.conf of containers' images.
const resolvConf = "\n# no resolv.conf configured\n"

// initResolvConf is where the resolv.conf of init images points.
const initResolvConf = "/run/resolvconf/resolv.conf"

// skeletonDirs are the directories LinuxKit writes after every image's own
// entries: whatever the image has there (a 0555 proc, a symlink, a file)
// ends as a 0755 directory owned by root, its contents kept.
var skeletonDirs = []string{"dev", "dev/pts", "dev/shm", "etc", "proc", "sys"}

// skeleton is a tiny tree holding skeletonDirs and the etc files every
// image tree gets (etc/hosts, etc/resolv.conf, etc/mtab). imageTree copies
// it over each image: a FileOp copy, unlike mkdir, applies the source
// directories' mode, owner and time to directories that already exist,
// and replaces entries of another type. The same tree serves every image
// of a kind, so BuildKit builds it once.
func (b *builder) skeleton(init bool) llb.State {
	ct := llb.WithCreatedTime(b.epoch())
	var fa *llb.FileAction
	for _, d := range skeletonDirs {
		if fa == nil {
			fa = llb.Mkdir("/"+d, 0o755, ct)
			continue
		}
		fa = fa.Mkdir("/"+d, 0o755, ct)
	}
	fa = fa.Mkfile("/etc/hosts", 0o644, []byte(hostsFile), ct)
	name := "[internal] image tree skeleton"
	if init {
		fa = fa.Symlink(initResolvConf, "/etc/resolv.conf", ct)
		name += " (init)"
	} else {
		fa = fa.Mkfile("/etc/resolv.conf", 0o644, []byte(resolvConf), ct)
	}
	fa = fa.Symlink("/proc/mounts", "/etc/mtab", ct)
	return llb.Scratch().File(fa, llb.WithCustomName(name))
}

// imageTree places the filtered content of an image at dest ("/" or a
// bundle directory) on an empty state, as LinuxKit's image extraction does:
// excluded paths dropped, etc/hosts and etc/resolv.conf replaced, and the
// skeleton directories written after the image's own entries, as 0755
// root directories with the epoch as time. For init images resolv.conf is
// a symlink into /run.
func (b *builder) imageTree(img llb.State, dest string, init bool, name string, pos spec.Pos) llb.State {
	return b.imageTreeOn(llb.Scratch(), img, dest, init, name, pos)
}

// imageTreeOn is imageTree on the state on instead of an empty one (a
// bundle's config files, written first so that they do not wait for the
// image).
func (b *builder) imageTreeOn(on, img llb.State, dest string, init bool, name string, pos spec.Pos) llb.State {
	epoch := b.epoch()
	fa := llb.Mkdir(dest, 0o755, llb.WithParents(true), llb.WithCreatedTime(epoch)).
		Copy(img, "/", dest, &llb.CopyInfo{
			CopyDirContentsOnly: true,
			ExcludePatterns:     excludedPaths,
			AllowEmptyWildcard:  true,
		}).
		Copy(b.skeleton(init), "/", dest, &llb.CopyInfo{
			CopyDirContentsOnly:            true,
			ChownOpt:                       &llb.ChownOpt{User: &llb.UserOpt{UID: 0}, Group: &llb.UserOpt{UID: 0}},
			CreatedTime:                    &epoch,
			AlwaysReplaceExistingDestPaths: true,
		})
	fa = b.touch(fa, append(withParents(dest), path.Join(dest, "dev"), path.Join(dest, "etc"))...)
	return on.File(fa, llb.WithCustomName(name), b.at(pos))
}
