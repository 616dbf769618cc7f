package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lkbuild/lkbuild/exporter/mkimage"
	"github.com/lkbuild/lkbuild/exporter/sbom"
	"github.com/spf13/cobra"
)

func sbomCmd() *cobra.Command {
	var input, output, segment string
	var epoch int64 = -1
	cmd := &cobra.Command{
		Use:   "sbom --input FILE --output FILE",
		Short: "Write the SPDX SBOM of a system from its image trees (runs inside builds)",
		Long: "Write the SPDX 2.3 JSON document of a system: its images and the packages their package\n" +
			"databases (apk, dpkg) and SPDX documents list. --input is the JSON the frontend writes: the\n" +
			"system's name, platform and time, and every use of an image with the directory where its\n" +
			"tree is mounted read-only. The frontend runs this inside the build.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" || output == "" {
				return fmt.Errorf("--input and --output are required")
			}
			dt, err := os.ReadFile(input)
			if err != nil {
				return err
			}
			var in sbom.Input
			if err := json.Unmarshal(dt, &in); err != nil {
				return fmt.Errorf("%s: %w", input, err)
			}
			if err := sbom.WriteFile(in, output, cmd.ErrOrStderr()); err != nil {
				return err
			}
			if segment == "" {
				return nil
			}
			var sde *time.Time
			if epoch >= 0 {
				t := time.Unix(epoch, 0).UTC()
				sde = &t
			}
			return writeSBOMSegment(cmd.Context(), output, segment, in.Created, sde)
		},
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "JSON description of the system and its images")
	f.StringVar(&output, "output", "", "file that receives the SPDX JSON document")
	f.StringVar(&segment, "segment-output", "", "directory that also receives the initrd segment of the document at the root, as mkimage --format "+mkimage.ExtraSegmentFormat+" writes it (root-owned, 0644, time of --input's created)")
	f.Int64Var(&epoch, "epoch", -1, "SOURCE_DATE_EPOCH for the segment (seconds; -1: not set)")
	return cmd
}

// writeSBOMSegment writes the initrd segment of the SBOM at output, as
// the root filesystem holds it (llbgen's SBOM layer: the file at the
// root, 0644, owned by root, with the time created), into dir. It is
// staged next to output: the helper image has no /tmp.
func writeSBOMSegment(ctx context.Context, output, dir string, created time.Time, epoch *time.Time) error {
	stage, err := os.MkdirTemp(filepath.Dir(output), ".segment-")
	if err != nil {
		return fmt.Errorf("the SBOM's segment: %w", err)
	}
	defer os.RemoveAll(stage)
	dt, err := os.ReadFile(output)
	if err != nil {
		return fmt.Errorf("the SBOM's segment: %w", err)
	}
	p := filepath.Join(stage, filepath.Base(output))
	if err := os.WriteFile(p, dt, 0o644); err != nil {
		return fmt.Errorf("the SBOM's segment: %w", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		return fmt.Errorf("the SBOM's segment: %w", err)
	}
	if err := os.Lchown(p, 0, 0); err != nil {
		return fmt.Errorf("the SBOM's segment: owned by root: %w", err)
	}
	if err := os.Chtimes(p, created, created); err != nil {
		return fmt.Errorf("the SBOM's segment: %w", err)
	}
	return mkimage.WriteExtraSegment(ctx, stage, dir, epoch)
}
