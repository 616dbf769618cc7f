package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lkbuild/lkbuild/exporter/mkimage"
	"github.com/spf13/cobra"
)

func mkimageCmd() *cobra.Command {
	var o mkimage.Options
	var epoch int64 = -1
	cmd := &cobra.Command{
		Use:   "mkimage --format FORMAT --name NAME --input DIR --output DIR",
		Short: "Write the artifacts of an output format from a root filesystem tree (runs inside builds)",
		Long: "Write the artifacts of one output format from a root filesystem tree. The frontend runs this\n" +
			"inside the build with the merged root filesystem mounted read-only.\n\nFormats: " +
			strings.Join(mkimage.FormatNames(), ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if epoch >= 0 {
				t := time.Unix(epoch, 0).UTC()
				o.Epoch = &t
			}
			if o.Input == "" || o.Output == "" || o.Format == "" {
				return fmt.Errorf("--format, --input and --output are required")
			}
			o.Log = os.Stderr
			return mkimage.Run(o)
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
	f.Int64Var(&epoch, "epoch", -1, "SOURCE_DATE_EPOCH: clamp timestamps to this many seconds since 1970")
	return cmd
}
