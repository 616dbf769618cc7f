package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/lkbuild/lkbuild/exporter/sbom"
	"github.com/spf13/cobra"
)

func sbomCmd() *cobra.Command {
	var input, output string
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
			return sbom.WriteFile(in, output, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "JSON description of the system and its images")
	f.StringVar(&output, "output", "", "file that receives the SPDX JSON document")
	return cmd
}
