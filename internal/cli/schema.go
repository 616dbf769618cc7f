package cli

import (
	"github.com/lkbuild/lkbuild/spec"
	"github.com/spf13/cobra"
)

func schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON schema of the LinuxKit YAML (for editors)",
		Long: "Print the JSON schema (draft-07) of the LinuxKit YAML as lkbuild reads it, generated from its\n" +
			"model; the same as docs/linuxkit.schema.json and `docker buildx build --call lkbuild.schema`.\n" +
			"Editors using yaml-language-server check and complete a file that starts with\n" +
			"  # yaml-language-server: $schema=<URL or path of the schema>\n" +
			"(docs/editors.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(spec.Schema())
			return err
		},
	}
}
