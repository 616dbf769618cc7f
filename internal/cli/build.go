package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lkbuild/lkbuild/frontend"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

type buildFlags struct {
	file, target, output, platform, helper, addr, progress string
	buildArgs                                              []string
	noCache                                                bool
}

func buildCmd() *cobra.Command {
	var fl buildFlags
	cmd := &cobra.Command{
		Use:   "build [flags] [CONTEXT]",
		Short: "Build a LinuxKit YAML with a BuildKit daemon, running the frontend in-process",
		Long: `Build a LinuxKit YAML with a BuildKit daemon, running the same frontend code in-process, and
write the target's artifacts into the output directory (one sub-directory per platform when several
are given). CONTEXT (default ".") is where files[].source is read from.

The daemon address is --addr, else $BUILDKIT_HOST, else BUILDKIT_HOST from .lkbuild/env (written by
` + "`make env`" + `). The mkimage helper runs from --helper-image, else $LKBUILD_FRONTEND, likewise.`,
		Example: "  lkbuild build -f examples/minimal.yml --target kernel+initrd -o out/",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			contextDir := "."
			if len(args) == 1 {
				contextDir = args[0]
			}
			return runBuild(cmd.Context(), fl, contextDir)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.file, "file", "f", "", "LinuxKit YAML to build (required)")
	f.StringVar(&fl.target, "target", "", "output format (default kernel+initrd; see --help of the frontend's targets)")
	f.StringVarP(&fl.output, "output", "o", "out", "directory that receives the artifacts")
	f.StringVar(&fl.platform, "platform", "", "target platforms, comma separated (default: the daemon's)")
	f.StringArrayVar(&fl.buildArgs, "build-arg", nil, "build argument KEY=VALUE (NAME, SOURCE_DATE_EPOCH)")
	f.StringVar(&fl.helper, "helper-image", "", "image providing /lkbuild for the in-build helper (default $LKBUILD_FRONTEND)")
	f.StringVar(&fl.addr, "addr", "", "BuildKit daemon address (default $BUILDKIT_HOST)")
	f.StringVar(&fl.progress, "progress", "auto", "progress output: auto, plain, tty, quiet, rawjson")
	f.BoolVar(&fl.noCache, "no-cache", false, "do not use the build cache")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func runBuild(ctx context.Context, fl buildFlags, contextDir string) error {
	env := loadEnvFile()
	addr := firstNonEmpty(fl.addr, os.Getenv("BUILDKIT_HOST"), env["BUILDKIT_HOST"])
	if addr == "" {
		return errors.New("no BuildKit daemon: set --addr or BUILDKIT_HOST, or run `make env`")
	}
	helper := firstNonEmpty(fl.helper, os.Getenv("LKBUILD_FRONTEND"), env["LKBUILD_FRONTEND"])

	attrs := map[string]string{"filename": filepath.Base(fl.file)}
	if fl.target != "" {
		attrs["target"] = fl.target
	}
	if fl.platform != "" {
		attrs["platform"] = fl.platform
	}
	if helper != "" {
		attrs[frontend.OptHelperImage] = helper
	}
	if fl.noCache {
		attrs["no-cache"] = ""
	}
	for _, a := range fl.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v, ok = os.LookupEnv(k)
		}
		if ok {
			attrs["build-arg:"+k] = v
		}
	}
	ctxFS, err := fsutil.NewFS(contextDir)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	fileFS, err := fsutil.NewFS(filepath.Dir(fl.file))
	if err != nil {
		return fmt.Errorf("%s: %w", fl.file, err)
	}

	out, err := filepath.Abs(fl.output)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// Export into a temporary sibling and move the artifacts in place only
	// when the build succeeded, so a failed build leaves nothing behind.
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".lkbuild-out-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	c, err := client.New(ctx, addr)
	if err != nil {
		return fmt.Errorf("connecting to BuildKit at %s: %w", addr, err)
	}
	defer c.Close()

	opt := client.SolveOpt{
		Exports:       []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: tmp}},
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": fileFS},
		FrontendAttrs: attrs,
	}
	display, err := progressui.NewDisplay(os.Stderr, progressui.DisplayMode(fl.progress))
	if err != nil {
		return err
	}
	ch := make(chan *client.SolveStatus)
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		_, err := c.Build(ectx, opt, "lkbuild", frontend.Build, ch)
		return err
	})
	eg.Go(func() error {
		_, err := display.UpdateFrom(context.WithoutCancel(ectx), ch)
		return err
	})
	if err := eg.Wait(); err != nil {
		return err
	}
	return moveInto(tmp, out)
}

// moveInto moves every entry of src into dst, replacing entries of the same name.
func moveInto(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		to := filepath.Join(dst, e.Name())
		if err := os.RemoveAll(to); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(src, e.Name()), to); err != nil {
			return err
		}
	}
	return nil
}

// loadEnvFile reads KEY=VALUE lines from .lkbuild/env in the working
// directory or one of its parents (the file `make env` writes).
func loadEnvFile() map[string]string {
	m := map[string]string{}
	dir, err := os.Getwd()
	if err != nil {
		return m
	}
	for {
		f, err := os.Open(filepath.Join(dir, ".lkbuild", "env"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
				k, v, ok := strings.Cut(line, "=")
				if !ok || strings.HasPrefix(k, "#") {
					continue
				}
				m[k] = strings.Trim(v, `"'`)
			}
			return m
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return m
		}
		dir = parent
	}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
