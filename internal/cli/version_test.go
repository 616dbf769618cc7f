package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/spec"
)

// TestVersionAndSchemaCommands: --version and version print the version
// and commit; schema prints the schema of the model.
func TestVersionAndSchemaCommands(t *testing.T) {
	run := func(args ...string) string {
		t.Helper()
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("lkbuild %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	if got := run("--version"); !strings.HasPrefix(got, "lkbuild ") || !strings.Contains(got, "(commit ") {
		t.Errorf("--version printed %q", got)
	}
	if got := run("version"); !strings.Contains(got, "version: ") || !strings.Contains(got, "commit: ") {
		t.Errorf("version printed %q", got)
	}
	if got := run("schema"); got != string(spec.Schema()) {
		t.Error("schema does not print spec.Schema()")
	}
}
