package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lkbuild/lkbuild/frontend"
	"github.com/lkbuild/lkbuild/internal/envfile"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// The steps of Build, in order: choose the daemon and helper image
// (daemon), turn the flags into the frontend's attributes (frontendAttrs,
// buildArgAttrs) and local sources (localMounts), then, with the output
// staged, run the solve with its progress display (solve).

// setDefaults fills in the defaults of unset options.
func (fl *BuildOptions) setDefaults() {
	if fl.Context == "" {
		fl.Context = "."
	}
	if fl.Progress == "" {
		fl.Progress = "auto"
	}
	if fl.Log == nil {
		fl.Log = os.Stderr
	}
}

// quiet reports whether the progress mode asks for no other output.
func (fl *BuildOptions) quiet() bool {
	return fl.Progress == "quiet" || fl.Progress == "rawjson"
}

// daemon returns the BuildKit address and the helper image: the flags,
// else the environment, else the environment file (.lkbuild/env) found
// from the working directory.
func daemon(fl BuildOptions) (addr, helper string, err error) {
	wd, _ := os.Getwd()
	envName, env := envfile.FindFile(wd)
	addr = firstNonEmpty(fl.Addr, os.Getenv("BUILDKIT_HOST"), env["BUILDKIT_HOST"])
	if addr == "" {
		return "", "", errors.New("no BuildKit daemon: set --addr or BUILDKIT_HOST, or run `make env`")
	}
	helper = firstNonEmpty(fl.Helper, os.Getenv("LKBUILD_FRONTEND"), env["LKBUILD_FRONTEND"])
	if !fl.quiet() {
		// Say when the environment file chose: a build picking up another
		// checkout's daemon is otherwise hard to notice.
		var chosen []string
		if fl.Addr == "" && os.Getenv("BUILDKIT_HOST") == "" {
			chosen = append(chosen, "BUILDKIT_HOST="+addr)
		}
		if fl.Helper == "" && os.Getenv("LKBUILD_FRONTEND") == "" && helper != "" {
			chosen = append(chosen, "LKBUILD_FRONTEND="+helper)
		}
		if len(chosen) > 0 {
			fmt.Fprintf(fl.Log, "lkbuild: %s from %s\n", strings.Join(chosen, ", "), envName)
		}
	}
	return addr, helper, nil
}

// frontendAttrs are the frontend's options for the YAML files names (the
// main one first, see yamlFiles) and the helper image, with the build-args
// and the named contexts.
func frontendAttrs(fl BuildOptions, names []string, helper string, named *namedContexts) map[string]string {
	attrs := map[string]string{"filename": names[0]}
	if len(names) > 1 {
		attrs["build-arg:"+frontend.ArgMerge] = strings.Join(names[1:], ",")
	}
	if fl.Target != "" {
		attrs["target"] = fl.Target
	}
	if fl.Platform != "" {
		attrs["platform"] = fl.Platform
	}
	if helper != "" {
		attrs[frontend.OptHelperImage] = helper
	}
	if fl.NoCache {
		attrs["no-cache"] = ""
	}
	for k, v := range buildArgAttrs(fl.BuildArgs, os.LookupEnv) {
		attrs[k] = v
	}
	for k, v := range named.attrs {
		attrs[k] = v
	}
	return attrs
}

// localMounts are the local sources sent to the daemon: the build context,
// the directory of the YAML files and the named contexts' directories.
func localMounts(fl BuildOptions, yamlDir string, named *namedContexts) (map[string]fsutil.FS, error) {
	ctxFS, err := fsutil.NewFS(fl.Context)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	fileFS, err := fsutil.NewFS(yamlDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fl.File, err)
	}
	mounts := map[string]fsutil.FS{"context": ctxFS, "dockerfile": fileFS}
	for k, fs := range named.locals {
		mounts[k] = fs
	}
	return mounts, nil
}

// solve runs the frontend in-process with opt, showing the progress, and
// prints the build's warnings at the end. build returns the frontend's
// build function given a function that adds a status of the client's own
// (a step done outside the daemon) to the progress shown.
func solve(ctx context.Context, c *client.Client, opt client.SolveOpt, fl BuildOptions, build func(status func(*client.SolveStatus)) frontend.BuildFunc) error {
	display, err := progressui.NewDisplay(os.Stderr, progressui.DisplayMode(fl.Progress))
	if err != nil {
		return err
	}
	ch := make(chan *client.SolveStatus)
	own := make(chan *client.SolveStatus, 16)
	eg, ectx := errgroup.WithContext(ctx)
	status := func(st *client.SolveStatus) {
		select {
		case own <- st:
		case <-ectx.Done():
		}
	}
	eg.Go(func() error {
		_, err := c.Build(ectx, opt, "lkbuild", build(status), ch)
		return err
	})
	// The client's own statuses come from the build function, so before
	// the daemon's stream (ch) ends.
	shown := make(chan *client.SolveStatus)
	eg.Go(func() error {
		defer close(shown)
		for {
			var st *client.SolveStatus
			select {
			case s, ok := <-ch:
				if !ok {
					return nil
				}
				st = s
			case st = <-own:
			}
			if fl.OnStatus != nil {
				fl.OnStatus(st)
			}
			shown <- st
		}
	})
	var warnings []client.VertexWarning
	eg.Go(func() error {
		var err error
		warnings, err = display.UpdateFrom(context.WithoutCancel(ectx), shown)
		return err
	})
	err = eg.Wait()
	// The display only collects warnings; like buildx, say them at the end.
	if !fl.quiet() {
		for _, w := range warnings {
			fmt.Fprintf(fl.Log, "WARNING: %s\n", w.Short)
		}
	}
	return err
}
