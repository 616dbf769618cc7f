package frontend_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/solver/errdefs"
)

// TestYAMLErrorLinesUnderCRBreaks: through a daemon, the error of a YAML
// written with lone CR line breaks names the line yaml.v3 counts, and the
// YAML lines BuildKit attaches to it show that line.
func TestYAMLErrorLinesUnderCRBreaks(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	bad := "kernel:\r  image: linuxkit/kernel:6.12.59\r  cmdlin: \"console=ttyS0\"\r"
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err := cli.Build(context.Background(), cli.BuildOptions{File: filepath.Join(dir, "bad.yml"), Context: dir, Output: filepath.Join(dir, "out"),
		Addr: env.Addr, Helper: env.Helper, Progress: "quiet"})
	if err == nil || !strings.Contains(err.Error(), "bad.yml:3:3") {
		t.Fatalf("error %v does not name bad.yml:3:3", err)
	}
	var shown bytes.Buffer
	for _, s := range errdefs.Sources(err) {
		_ = s.Print(&shown)
	}
	if !strings.Contains(shown.String(), ">>>   cmdlin: \"console=ttyS0\"") {
		t.Errorf("the YAML lines of the error do not show line 3:\n%s", shown.String())
	}
}

// TestSBOMValueRefused: an SBOM value outside true, false, 1 and 0 fails
// the build before anything is fetched, naming the build-arg and the
// values it takes.
func TestSBOMValueRefused(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	err := cli.Build(context.Background(), cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Context: dir,
		Output: filepath.Join(dir, "out"), Addr: env.Addr, Helper: env.Helper, Progress: "quiet", BuildArgs: []string{"SBOM=FALSE"}})
	if err == nil || !strings.Contains(err.Error(), `build-arg SBOM: "FALSE"`) || !strings.Contains(err.Error(), "true, false, 1 or 0") {
		t.Errorf("SBOM=FALSE: err = %v", err)
	}
}
