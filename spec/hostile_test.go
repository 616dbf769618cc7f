package spec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/golden"
)

// The hostile corpus (testdata/hostile) holds one input per kind of bad
// configuration: a file, or a directory of files merged in name order.
// Header comments say what each must give:
//
//	# want: file:line:col: field: message    the first error, exactly
//	# label image-ref: text                   the org.mobyproject.config
//	                                          label of an image (bundles
//	                                          are then generated); a text
//	                                          in double quotes is a Go
//	                                          string ("a\nb")
//
// go test ./spec -run TestHostile -update rewrites the want lines with
// what the inputs give now (check every change by hand).

type hostileCase struct {
	name   string   // path under testdata/hostile
	files  []string // paths of its files, in load order
	want   string
	labels map[string]string
}

var (
	wantRE  = regexp.MustCompile(`(?m)^# want: (.*)$`)
	labelRE = regexp.MustCompile(`(?m)^# label ([^ ]+): (.*)$`)
)

func hostileCases(t testing.TB) []hostileCase {
	entries, err := os.ReadDir("testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	var cases []hostileCase
	for _, e := range entries {
		c := hostileCase{name: e.Name(), labels: map[string]string{}}
		p := filepath.Join("testdata/hostile", e.Name())
		if e.IsDir() {
			sub, err := os.ReadDir(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sub {
				c.files = append(c.files, filepath.Join(p, s.Name()))
			}
			sort.Strings(c.files)
		} else if strings.HasSuffix(e.Name(), ".yml") {
			c.files = []string{p}
		} else {
			continue
		}
		for _, f := range c.files {
			dt, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if m := wantRE.FindSubmatch(dt); m != nil {
				c.want = string(m[1])
			}
			for _, m := range labelRE.FindAllSubmatch(dt, -1) {
				l := string(m[2])
				if strings.HasPrefix(l, `"`) {
					if l, err = strconv.Unquote(l); err != nil {
						t.Fatalf("%s: label: %v", f, err)
					}
				}
				c.labels[string(m[1])] = l
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// load runs the case as a build would before fetching anything: Load,
// then, when the case gives labels, the bundles with those labels. It
// returns the first error.
func (c hostileCase) load() (*Error, error) {
	var srcs []Source
	for _, f := range c.files {
		dt, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, Source{Filename: strings.TrimPrefix(f, "testdata/hostile/"), Data: dt})
	}
	cfg, err := Load(srcs...)
	if err == nil && len(c.labels) > 0 {
		ics := map[string]ImageConfig{}
		for ref, l := range c.labels {
			ics[ref] = ImageConfig{Labels: map[string]string{LabelConfig: l}}
		}
		_, err = Bundles(cfg, ics)
	}
	if err == nil {
		return nil, nil
	}
	var errs Errors
	var one *Error
	switch {
	case errors.As(err, &errs) && len(errs) > 0:
		return errs[0], nil
	case errors.As(err, &one):
		return one, nil
	}
	return nil, err
}

// TestHostileCorpus: every input of the hostile corpus is refused before
// any image is fetched, with its first error at the exact file, line,
// column and field path, and the exact message.
func TestHostileCorpus(t *testing.T) {
	cases := hostileCases(t)
	rejected, exactPos := 0, 0
	for _, c := range cases {
		got, err := c.load()
		if err != nil {
			t.Errorf("%s: unpositioned error %v", c.name, err)
			continue
		}
		if got == nil {
			t.Errorf("%s: accepted, want %s", c.name, c.want)
			continue
		}
		rejected++
		if golden.Update() {
			updateWant(t, c, got.Error())
			continue
		}
		if pos := regexp.MustCompile(`^[^:]*:\d+:\d+:`).FindString(c.want); pos != "" && strings.HasPrefix(got.Error(), pos) {
			exactPos++
		}
		if got.Error() != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got.Error(), c.want)
		}
	}
	if len(cases) < 40 {
		t.Errorf("only %d hostile inputs", len(cases))
	}
	t.Logf("%d hostile inputs: %d rejected, %d at the expected file:line:col", len(cases), rejected, exactPos)
}

func updateWant(t *testing.T, c hostileCase, got string) {
	for _, f := range c.files {
		dt, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		loc := wantRE.FindSubmatchIndex(dt)
		if loc == nil {
			continue
		}
		out := append(append(append([]byte(nil), dt[:loc[2]]...), got...), dt[loc[3]:]...)
		if !bytes.Equal(out, dt) {
			if err := os.WriteFile(f, out, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	t.Errorf("%s: no want line", c.name)
}
