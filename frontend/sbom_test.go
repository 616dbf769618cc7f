package frontend

import (
	"os"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/buildarg"
	"github.com/moby/buildkit/client/llb"
)

// TestParseSBOM: the SBOM build-arg takes exactly true, false, 1 or 0
// (unset or empty is on); any other spelling, also another case, is
// refused with an error naming the build-arg and the accepted values.
func TestParseSBOM(t *testing.T) {
	for v, want := range map[string]bool{"": true, "true": true, "1": true, "false": false, "0": false} {
		got, err := parseSBOM(v)
		if err != nil || got != want {
			t.Errorf("SBOM=%q: %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"FALSE", "False", "TRUE", "True", "t", "f", "T", "F", "no", "off", "yes please", " true", "false ", "01"} {
		if _, err := parseSBOM(v); err == nil || !strings.Contains(err.Error(), "build-arg SBOM: ") || !strings.Contains(err.Error(), "true, false, 1 or 0") {
			t.Errorf("SBOM=%q: err = %v, want one naming the build-arg and true, false, 1 or 0", v, err)
		}
	}
}

// TestSBOMValuesDocumented: `--call outline`, the docs and the parser
// name the same accepted values of SBOM.
func TestSBOMValuesDocumented(t *testing.T) {
	for _, a := range outlineOf("", "a.yml").Args {
		if a.Name == ArgSBOM && (!strings.Contains(a.Description, buildarg.BoolValues) || a.Value != "true") {
			t.Errorf("outline of SBOM: %q (default %q), want the values %q and the default true", a.Description, a.Value, buildarg.BoolValues)
		}
	}
	dt, err := os.ReadFile("../docs/sbom.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(dt)), " "), "`SBOM` takes exactly `true`, `false`, `1` or `0`, in lower case") {
		t.Error("docs/sbom.md does not say which values SBOM takes")
	}
}

func TestCheckSBOMHelper(t *testing.T) {
	if err := checkSBOMHelper(true, nil); err == nil || !strings.Contains(err.Error(), "SBOM=false") {
		t.Errorf("no helper: err = %v, want one saying how to turn the SBOM off", err)
	}
	st := llb.Image("example.com/lkbuild:x")
	if err := checkSBOMHelper(true, &st); err != nil {
		t.Error(err)
	}
	if err := checkSBOMHelper(false, nil); err != nil {
		t.Error(err)
	}
}
