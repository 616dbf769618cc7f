// Package cli holds lkbuild's command line: the gateway frontend entry
// point, `build` (the frontend run in-process against a BuildKit daemon),
// `run` (boot an artifact in qemu) and `mkimage` (the artifact writer that
// runs inside builds).
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lkbuild/lkbuild/frontend"
	"github.com/lkbuild/lkbuild/internal/version"
	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/spf13/cobra"
)

// Main runs the command line with args and returns the exit code.
func Main(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lkbuild:", err)
		return 1
	}
	return 0
}

// newRoot returns the lkbuild command with its subcommands.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "lkbuild",
		Short:         "Build LinuxKit operating systems with BuildKit",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().Short(),
	}
	root.SetVersionTemplate("lkbuild {{.Version}}\n")
	root.AddCommand(frontendCmd(), buildCmd(), runCmd(), mkimageCmd(), ocilayoutCmd(), schemaCmd(), versionCmd(), sbomCmd())
	return root
}

func frontendCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "frontend",
		Short: "Run as a BuildKit gateway frontend (the frontend image's entrypoint)",
		Long: "Run as a BuildKit gateway frontend. BuildKit starts this from the frontend image named on the\n" +
			"`# syntax=` line of a LinuxKit YAML; it talks gRPC over stdin/stdout.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return grpcclient.RunFromEnvironment(cmd.Context(), frontend.Build)
		},
	}
}
