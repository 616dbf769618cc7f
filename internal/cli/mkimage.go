package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/exporter/mkimage"
	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/buildarg"
	"github.com/spf13/cobra"
)

// stopGrace is how long mkimage waits, after SIGTERM or SIGINT, for the
// writer to stop and clean up before giving up on it. In a build the
// helper is its container's PID 1, for which the kernel ignores signals
// the process does not handle: without this, a writer that does not
// return would keep the build, and the daemon, waiting.
var stopGrace = 3 * time.Second

func mkimageCmd() *cobra.Command {
	var o mkimage.Options
	var epoch int64 = -1
	cmd := &cobra.Command{
		Use:   "mkimage --format FORMAT --name NAME --input DIR --output DIR",
		Short: "Write the artifacts of an output format from a root filesystem tree (runs inside builds)",
		Long: "Write the artifacts of one output format from a root filesystem tree. The frontend runs this\n" +
			"inside the build with the merged root filesystem mounted read-only. SIGTERM or SIGINT stops it:\n" +
			"the files it started are removed and it exits with status 1.\n\nFormats: " +
			strings.Join(mkimage.FormatNames(), ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Epoch = buildarg.EpochAt(epoch)
			if o.Input == "" || o.Output == "" || o.Format == "" {
				return fmt.Errorf("--format, --input and --output are required")
			}
			o.Log = os.Stderr
			return runMkimage(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Format, "format", "", "output format")
	f.StringVar(&o.Name, "name", "linuxkit", "base name of the files written")
	f.StringVar(&o.Input, "input", "", "root filesystem tree")
	f.StringVar(&o.Output, "output", "", "directory for the artifacts")
	f.StringVar(&o.Arch, "arch", "amd64", "target architecture (GOARCH spelling): picks kernel names and bootloaders")
	f.Int64Var(&o.Size, "size", 0, "disk size in bytes for disk formats (0: as small as the contents allow)")
	f.StringVar(&o.BootFiles, "boot-files", mkimage.DefaultBootFiles, "directory of bootloader files, one subdirectory per architecture")
	f.StringArrayVar(&o.InitrdSegments, "initrd-segment", nil, "a file of the initrd, in order (repeated): the initrd is their concatenation instead of the tree's cpio")
	f.StringArrayVar(&o.SegmentPaths, "segment-path", nil, "for format "+mkimage.FilesSegmentFormat+": a path to write, with the directories above it (repeated)")
	f.BoolVar(&o.InitrdPartsSegmented, "initrd-parts-segmented", false, "with --initrd-parts-dir: the initrd is segmented and the frontend lists the segments; write only this step's parts (microcode) and their manifest, into the parts directory")
	f.StringVar(&o.InitrdPartsDir, "initrd-parts-dir", "", "for format kernel+initrd: write the initrd in parts, for lkbuild build's cache: the manifest into the output's "+formats.InitrdPartsDir+" and the parts that are not segments into this directory, named by their SHA-256")
	f.StringVar(&o.SegmentExclude, "segment-exclude", "", "for the base segment formats: the tree of the kernel's segment ("+mkimage.KernelSegmentFormat+"), whose non-directories are left out")
	f.Int64Var(&epoch, "epoch", -1, "SOURCE_DATE_EPOCH: clamp timestamps to this many seconds since 1970")
	return cmd
}

// runMkimage runs mkimage.Run until it returns or, once ctx is cancelled
// (Main cancels it on SIGTERM and SIGINT), for at most stopGrace more.
func runMkimage(ctx context.Context, o mkimage.Options) error {
	done := make(chan error, 1)
	go func() { done <- mkimage.Run(ctx, o) }()
	select {
	case err := <-done:
		return stopped(ctx, err)
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return stopped(ctx, err)
	case <-time.After(stopGrace):
		return fmt.Errorf("mkimage: stopped by a signal; %s still running after %s, exiting without cleaning up", o.Format, stopGrace)
	}
}

// stopped says that a run ended by a signal was stopped, not failed.
func stopped(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("mkimage: stopped by a signal: %w", err)
	}
	return err
}
