package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/lkbuild/lkbuild/exporter/ocilayout"
	"github.com/lkbuild/lkbuild/internal/buildarg"
	"github.com/spf13/cobra"
)

func ocilayoutCmd() *cobra.Command {
	var ref, output string
	var images []string
	var epoch int64 = -1
	cmd := &cobra.Command{
		Use:   "ocilayout --ref REF --image ROOTFS:CONFIG [--image ...] --output DIR",
		Short: "Write an OCI image layout from root filesystem trees (runs inside builds, for oci volumes)",
		Long: "Write an OCI image layout of one image, one platform per --image: the platform's root filesystem\n" +
			"tree and its OCI config JSON file. The frontend runs this inside the build for volumes of\n" +
			"format oci, with the trees mounted read-only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ref == "" || output == "" || len(images) == 0 {
				return fmt.Errorf("--ref, --image and --output are required")
			}
			var list []ocilayout.Image
			for _, im := range images {
				root, cfgFile, ok := strings.Cut(im, ":")
				if !ok {
					return fmt.Errorf("--image %q: want ROOTFS:CONFIG", im)
				}
				dt, err := os.ReadFile(cfgFile)
				if err != nil {
					return err
				}
				list = append(list, ocilayout.Image{Rootfs: root, Config: dt})
			}
			return ocilayout.Write(output, ref, list, buildarg.EpochAt(epoch))
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "image reference recorded in index.json")
	f.StringArrayVar(&images, "image", nil, "ROOTFS:CONFIG of one platform (repeat)")
	f.StringVar(&output, "output", "", "directory that receives the layout")
	f.Int64Var(&epoch, "epoch", -1, "SOURCE_DATE_EPOCH: clamp timestamps to this many seconds since 1970")
	return cmd
}
