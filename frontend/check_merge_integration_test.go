package frontend_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/frontend/subrequests/lint"
)

// TestBuildxCheckMerge: with MERGE, --call check reports the merged
// file's warnings in that file (JSON) and names it in the text buildx
// prints, although buildx prints every file's lines under the -f path.
func TestBuildxCheckMerge(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out, errb, _ := buildxCall(t, env, "check.yml", "check,format=json", "--build-arg", "MERGE=check-merge.yml")
	var res lint.LintResults
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check JSON: %v\n%s%s", err, out, errb)
	}
	found := false
	for _, w := range res.Warnings {
		if w.Location == nil || w.Location.SourceIndex < 0 || len(w.Location.Ranges) == 0 {
			continue
		}
		if res.Sources[w.Location.SourceIndex].Filename == "check-merge.yml" {
			found = w.RuleName == "MovingImageTag" && w.Location.Ranges[0].Start.Line == 5
		}
	}
	if !found {
		t.Errorf("no MovingImageTag warning at check-merge.yml:5 in the JSON:\n%s", out)
	}

	out, errb, _ = buildxCall(t, env, "check.yml", "check", "--build-arg", "MERGE=check-merge.yml")
	text := string(out) + string(errb)
	for _, s := range []string{"check-merge.yml:5:12: services[0].image: image \"busybox\" has no tag", "check.yml:16:12: services[0].image: image \"busybox\" has no tag"} {
		if !strings.Contains(text, s) {
			t.Errorf("buildx --call check output lacks %q:\n%s", s, text)
		}
	}
}
