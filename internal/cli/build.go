package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/frontend"
	"github.com/lkbuild/lkbuild/internal/buildarg"
	"github.com/moby/buildkit/client"
	"github.com/spf13/cobra"
)

// BuildOptions are the inputs of Build (the flags of `lkbuild build`).
type BuildOptions struct {
	File      string   // LinuxKit YAML
	Merge     []string // more YAML files merged after File, in order
	Context   string   // build context directory
	Target    string   // output format
	Output    string   // directory receiving the artifacts
	Platform  string   // comma-separated target platforms
	Helper    string   // image providing /lkbuild
	Addr      string   // BuildKit daemon address
	Progress  string   // progress display mode
	BuildArgs []string // KEY=VALUE
	// Contexts are named build contexts NAME=VALUE; one named by an image
	// reference provides that image (see parseContexts).
	Contexts []string
	NoCache  bool
	// InitrdCache is the cache of initrd parts (initrdparts.go): a
	// directory, InitrdCacheAuto, or "" or InitrdCacheNone for none.
	InitrdCache string
	// OnStatus, when set, sees every progress update (tests use it to
	// check which steps came from the cache).
	OnStatus func(*client.SolveStatus)
	// Log receives lkbuild's own messages and the build's warnings
	// (default os.Stderr; the progress display always writes to
	// os.Stderr).
	Log io.Writer
}

func buildCmd() *cobra.Command {
	var fl BuildOptions
	var files []string
	cmd := &cobra.Command{
		Use:   "build [flags] [CONTEXT]",
		Short: "Build a LinuxKit YAML with a BuildKit daemon, running the frontend in-process",
		Long: `Build a LinuxKit YAML with a BuildKit daemon, running the same frontend code in-process, and
write the target's artifacts into the output directory (one sub-directory per platform when several
are given). CONTEXT (default ".") is where files[].source is read from; a source outside it
(absolute, ~/..., ../...) is an error, or skipped with a warning when optional.

The artifacts are moved into the output directory only when the build succeeds (it is exported into
a hidden .lkbuild-out-* directory there first): each artifact replaces its own file, atomically (other files and directories stay; an entry of another kind, such as a directory
where the artifact is a file, fails the build and nothing is moved). It may be on another filesystem.
A build holds the directory's lock (.lkbuild.lock) until its artifacts are in place, so a second build
into the same directory waits.

The daemon address is --addr, else $BUILDKIT_HOST, else BUILDKIT_HOST from .lkbuild/env (written by
` + "`make env`" + `) in the working directory or the nearest parent that has one; the build says when
that file chose. The mkimage helper runs from --helper-image, else $LKBUILD_FRONTEND, likewise.

Images that no registry has (an OCI layout on disk, a directory) are given with
--build-context REF=VALUE, REF being the image as the YAML writes it (or its normalised form, such
as docker.io/linuxkit/init:abc for linuxkit/init:abc); see docs/local-images.md.

Build arguments: NAME (the artifacts' base name: one plain file name, not a path), SOURCE_DATE_EPOCH
(0 to 4294967295), SIZE (disk size, e.g. 2G, at most 2T), MERGE (set by repeating -f), SBOM
(` + buildarg.BoolValues + `: true or 1, the default, writes /sbom.spdx.json; false or 0 leaves it out,
as linuxkit build --no-sbom).

Targets (--target; several separated by commas are built from one root filesystem into one
output, e.g. --target kernel+initrd,iso-efi; tar and docker only on their own):
` + targetHelp(),
		Example: "  lkbuild build -f examples/minimal.yml --target kernel+initrd -o out/\n" +
			"  lkbuild build -f base.yml -f debug.yml -o out/    # merged in order, like linuxkit build base.yml debug.yml\n" +
			"  lkbuild build -f linuxkit.yml --target kernel+initrd,iso-efi -o out/  # one root filesystem, both formats in out/\n" +
			"  lkbuild build -f linuxkit.yml --build-context linuxkit/init:abc=oci-layout://./init-layout -o out/  # init from an OCI layout\n" +
			"  lkbuild build -f linuxkit.yml --platform linux/amd64,linux/arm64 --target raw-efi -o out/  # out/linux_amd64, out/linux_arm64",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl.Context = "."
			if len(args) == 1 {
				fl.Context = args[0]
			}
			fl.File, fl.Merge = files[0], files[1:]
			return Build(cmd.Context(), fl)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "file", "f", nil, "LinuxKit YAML to build (required); repeat to merge several files in order")
	f.StringVar(&fl.Target, "target", "", "output format, or several separated by commas built from one root filesystem (default kernel+initrd; listed above)")
	f.StringVarP(&fl.Output, "output", "o", "out", "directory that receives the artifacts, or type=tar,dest=FILE.tar")
	f.StringVar(&fl.Platform, "platform", "", "target platforms, comma separated (default: the daemon's)")
	f.StringArrayVar(&fl.BuildArgs, "build-arg", nil, "build argument KEY=VALUE ("+strings.Join(frontend.BuildArgNames(), ", ")+"; docker buildx build --call outline describes them)")
	f.StringArrayVar(&fl.Contexts, "build-context", nil, "image from elsewhere than a registry, REF=VALUE: oci-layout://DIR[@sha256:DIGEST], docker-image://REF, or a directory; REF as the YAML writes it or normalised")
	f.StringVar(&fl.Helper, "helper-image", "", "image providing /lkbuild for the in-build helper (default $LKBUILD_FRONTEND)")
	f.StringVar(&fl.Addr, "addr", "", "BuildKit daemon address (default $BUILDKIT_HOST)")
	f.StringVar(&fl.Progress, "progress", "auto", "progress output: auto, plain, tty, quiet, rawjson")
	f.BoolVar(&fl.NoCache, "no-cache", false, "do not use the build cache")
	f.StringVar(&fl.InitrdCache, "initrd-cache", InitrdCacheAuto, "cache of initrd parts, so that kernel+initrd sends and writes again only the parts that changed: a directory, auto ($XDG_CACHE_HOME/lkbuild/initrd-parts, else ~/.cache/...) or none")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// Build runs the frontend in-process against a BuildKit daemon and moves
// the artifacts into fl.Output only when the build succeeded. Its steps
// are in buildreq.go.
func Build(ctx context.Context, fl BuildOptions) error {
	fl.setDefaults()
	addr, helper, err := daemon(fl)
	if err != nil {
		return err
	}
	yamlDir, names, err := yamlFiles(append([]string{fl.File}, fl.Merge...))
	if err != nil {
		return err
	}
	named, err := parseContexts(fl.Contexts)
	if err != nil {
		return err
	}
	attrs := frontendAttrs(fl, names, helper, named)
	mounts, err := localMounts(fl, yamlDir, named)
	if err != nil {
		return err
	}

	exp, err := parseOutput(fl.Output)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(exp.dest)
	if err != nil {
		return err
	}
	// Export into a temporary directory and move the artifacts in place
	// only when the build succeeded, so a failed build leaves nothing
	// behind; a directory stays locked until then (see output.go).
	stage, err := exp.open(ctx, out, fl.Log)
	if err != nil {
		return err
	}
	committed := false
	defer func() { stage.close(committed) }()

	c, err := client.New(ctx, addr)
	if err != nil {
		return fmt.Errorf("connecting to BuildKit at %s: %w", addr, err)
	}
	defer c.Close()

	key, err := sharedKey(fl.Context, yamlDir)
	if err != nil {
		return err
	}
	cache, err := openCacheFor(ctx, fl, exp, attrs)
	if err != nil {
		return err
	}
	if cache != nil {
		defer cache.close()
		// The parts the frontend sends (ReceivePart) wait next to the
		// export, as the exported files do, until the initrd is written.
		if cache.recv, err = stage.scratchDir(); err != nil {
			return err
		}
	}
	opt := client.SolveOpt{
		Exports:       []client.ExportEntry{exp.entry(stage.tmp)},
		LocalMounts:   mounts,
		OCIStores:     named.stores,
		SharedKey:     key,
		FrontendAttrs: attrs,
	}
	err = solveInto(ctx, c, opt, fl, cache, stage)
	if errors.Is(err, errPartGone) {
		// A cached part of the initrd vanished or was damaged (and
		// removed): ask once more, for what the cache has now.
		fmt.Fprintf(fl.Log, "lkbuild: %v\n", err)
		// The initrds written during the first try (another platform's,
		// possibly from the same damaged part) are not taken again.
		cache.settlePreassemblies()
		if err = stage.reset(); err == nil {
			if attrs[frontend.OptInitrdParts], err = cache.attr(); err == nil {
				err = solveInto(ctx, c, opt, fl, cache, stage)
			}
		}
	}
	if err != nil {
		return err
	}
	if err := stage.commit(); err != nil {
		return err
	}
	committed = true
	return nil
}

// solveInto runs the build into stage's temporary directory and writes
// the initrd from its parts when the initrd cache is used.
func solveInto(ctx context.Context, c *client.Client, opt client.SolveOpt, fl BuildOptions, cache *initrdCache, stage *outputDir) error {
	if cache == nil {
		return solve(ctx, c, opt, fl, func(func(*client.SolveStatus)) frontend.BuildFunc { return frontend.Build })
	}
	err := solve(ctx, c, opt, fl, func(status func(*client.SolveStatus)) frontend.BuildFunc {
		cache.status = status
		return frontend.BuildReceivingParts(cache)
	})
	if err != nil {
		return err
	}
	return cache.assemble(stage.tmp)
}

// output is where `-o` sends the result: a directory (type=local, the
// default) or a tar file (type=tar, LinuxKit's tar format for `--target tar`).
type output struct {
	typ, dest string
}

// parseOutput reads `-o DIR` or buildx-style `-o type=local|tar,dest=PATH`.
func parseOutput(v string) (output, error) {
	if !strings.Contains(v, "=") {
		return output{typ: client.ExporterLocal, dest: v}, nil
	}
	o := output{typ: client.ExporterLocal}
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			o.typ = val
		case "dest":
			o.dest = val
		default:
			return o, fmt.Errorf("-o %s: unknown key %q (type, dest)", v, k)
		}
	}
	if o.typ != client.ExporterLocal && o.typ != client.ExporterTar {
		return o, fmt.Errorf("-o %s: type must be local or tar", v)
	}
	if o.dest == "" {
		return o, fmt.Errorf("-o %s: no dest", v)
	}
	return o, nil
}

const tarName = "result.tar"

// entry exports into the temporary directory tmp.
func (o output) entry(tmp string) client.ExportEntry {
	if o.typ == client.ExporterTar {
		return client.ExportEntry{Type: client.ExporterTar, Output: func(map[string]string) (io.WriteCloser, error) {
			return os.Create(filepath.Join(tmp, tarName))
		}}
	}
	return client.ExportEntry{Type: client.ExporterLocal, OutputDir: tmp}
}

// open prepares the destination dest (absolute): the output directory,
// locked, with a temporary directory inside it, or for a tar file a
// temporary directory next to it.
func (o output) open(ctx context.Context, dest string, log io.Writer) (*outputDir, error) {
	if o.typ == client.ExporterTar {
		return openOutputDir(ctx, filepath.Dir(dest), dest, log)
	}
	return openOutputDir(ctx, dest, "", log)
}

// sharedKey names the local directories of one build for BuildKit's
// incremental transfer. BuildKit keeps the last copy of every local source
// under its name, the frontend's hint and this key, and re-sends only the
// files whose size or modification time changed. With one key for every
// build, a context or YAML directory would be diffed against another
// directory's copy, and a file of the same size and time there would be
// kept instead of read. The key therefore covers the absolute paths of the
// build context and of the YAML directory, and this host (one daemon can
// serve several machines), as buildx keys a context by its path and the
// client's node.
func sharedKey(contextDir, yamlDir string) (string, error) {
	h := sha256.New()
	host, _ := os.Hostname()
	fmt.Fprintf(h, "host=%s\x00", host)
	for _, d := range []string{contextDir, yamlDir} {
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", fmt.Errorf("build context: %w", err)
		}
		fmt.Fprintf(h, "%s\x00", abs)
	}
	return "lkbuild-" + hex.EncodeToString(h.Sum(nil))[:32], nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// yamlFiles returns the directory holding all the YAML files (the
// frontend's "dockerfile" local), the first file's slash path inside it and
// the others' slash paths relative to the first file's directory (MERGE
// names are relative to the main YAML, as with buildx).
func yamlFiles(files []string) (string, []string, error) {
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return "", nil, err
		}
		abs[i] = a
	}
	root := filepath.Dir(abs[0])
	for _, a := range abs[1:] {
		d := filepath.Dir(a)
		for root != filepath.Dir(root) && !strings.HasPrefix(d+string(filepath.Separator), root+string(filepath.Separator)) {
			root = filepath.Dir(root)
		}
	}
	names := make([]string, len(files))
	for i, a := range abs {
		base := root
		if i > 0 {
			base = filepath.Dir(abs[0])
		}
		rel, err := filepath.Rel(base, a)
		if err != nil {
			return "", nil, err
		}
		names[i] = filepath.ToSlash(rel)
	}
	return root, names, nil
}

// targetHelp lists the targets, one per line, for --help.
func targetHelp() string {
	var b strings.Builder
	for _, t := range formats.All() {
		fmt.Fprintf(&b, "  %-18s %s\n", t.Name, t.Summary())
	}
	return strings.TrimRight(b.String(), "\n")
}
