package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/golden"
)

// parityResult is what a LinuxKit YAML (or a group of them, merged in
// order) gives: the first error, or each bundle's config.json and
// runtime.json as generated from an empty image config.
type parityResult struct {
	Error   string                  `json:"error,omitempty"`
	Bundles map[string]parityBundle `json:"bundles,omitempty"`
}

type parityBundle struct {
	Error   string          `json:"error,omitempty"`
	Config  json.RawMessage `json:"config,omitempty"`
	Runtime json.RawMessage `json:"runtime,omitempty"`
}

// parityInputs lists every YAML of LinuxKit's examples/ and test/cases/
// (copied under testdata/linuxkit) and the groups of groups.txt, each a
// list of files relative to testdata/linuxkit.
func parityInputs(t *testing.T) [][]string {
	var inputs [][]string
	for _, dir := range []string{"examples", "cases", "lkbuild"} {
		err := filepath.WalkDir(filepath.Join("testdata/linuxkit", dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yml") {
				inputs = append(inputs, []string{strings.TrimPrefix(p, "testdata/linuxkit/")})
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	groups, err := os.ReadFile("testdata/linuxkit/groups.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(groups), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(line, "#") {
			inputs = append(inputs, f)
		}
	}
	return inputs
}

func parity(files []string) parityResult {
	var srcs []Source
	for _, f := range files {
		dt, err := os.ReadFile(filepath.Join("testdata/linuxkit", f))
		if err != nil {
			return parityResult{Error: err.Error()}
		}
		srcs = append(srcs, Source{Filename: f, Data: dt})
	}
	cfg, err := Load(srcs...)
	if err != nil {
		return parityResult{Error: err.Error()}
	}
	// The bundles' configs as Bundles makes them, in its order.
	res := parityResult{Bundles: map[string]parityBundle{}}
	b := newBundler(cfg)
	for _, e := range cfg.entries() {
		key := e.section + "/" + e.img.Name
		oci, rt, err := b.configs(e.img, ImageConfig{})
		if err != nil {
			res.Bundles[key] = parityBundle{Error: err.Error()}
			continue
		}
		c, _ := json.MarshalIndent(oci, "", "  ")
		r, _ := json.MarshalIndent(rt, "", "  ")
		res.Bundles[key] = parityBundle{Config: c, Runtime: r}
	}
	return res
}

// TestLinuxKitParity runs every YAML of LinuxKit's examples and test cases
// and compares the outcome with testdata/linuxkit/golden (go test -update
// rewrites). The golden files were checked against LinuxKit's own
// config generation, run on the same inputs.
func TestLinuxKitParity(t *testing.T) {
	inputs := parityInputs(t)
	var ok, failed []string
	for _, files := range inputs {
		key := strings.ReplaceAll(strings.Join(files, "+"), "/", "__")
		res := parity(files)
		if res.Error != "" {
			failed = append(failed, key)
		} else {
			ok = append(ok, key)
		}
		got, _ := json.MarshalIndent(res, "", "  ")
		got = append(got, '\n')
		golden.Check(t, filepath.Join("testdata/linuxkit/golden", key+".json"), got, "TestLinuxKitParity")
	}
	sort.Strings(failed)
	t.Logf("%d inputs: %d build, %d fail: %s", len(inputs), len(ok), len(failed), strings.Join(failed, ", "))
}
