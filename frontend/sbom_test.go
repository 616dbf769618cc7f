package frontend

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
)

func TestParseSBOM(t *testing.T) {
	for v, want := range map[string]bool{"": true, "true": true, "1": true, "false": false, "0": false, "FALSE": false} {
		got, err := parseSBOM(v)
		if err != nil || got != want {
			t.Errorf("SBOM=%q: %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"no", "off", "yes please"} {
		if _, err := parseSBOM(v); err == nil || !strings.Contains(err.Error(), "build-arg SBOM") {
			t.Errorf("SBOM=%q: err = %v, want one naming the build-arg", v, err)
		}
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
