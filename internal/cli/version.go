package cli

import (
	"fmt"

	"github.com/lkbuild/lkbuild/internal/version"
	"github.com/spf13/cobra"
)

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print lkbuild's version and the commit it was built from",
		Long: "Print the version of the lkbuild module, the commit it was built from, whether the working tree\n" +
			"had changes, and the Go version (`lkbuild --version` prints the first two on one line).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), version.Get())
			return err
		},
	}
}
