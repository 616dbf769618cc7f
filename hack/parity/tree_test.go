package parity_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/hack/parity"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/lkbuild/lkbuild/spec"
	"golang.org/x/sync/errgroup"
)

// result is one input's comparison.
type result struct {
	in        parity.Input
	rec       *parity.Recorded
	buildErr  error
	diffs     []*parity.Diff
	harnessEr error
	// failRule is the rule allowing an input only LinuxKit fails on.
	failRule string
}

func (r *result) status() string {
	switch {
	case r.harnessEr != nil:
		return "harness error"
	case r.rec.Error != "" && r.buildErr != nil:
		return "fail in both"
	case r.rec.Error != "" && r.failRule != "":
		return "fail only in linuxkit, allowed"
	case r.rec.Error != "":
		return "fail only in linuxkit"
	case r.buildErr != nil:
		return "fail only in lkbuild"
	case len(r.diffs) == 0:
		return "identical"
	case len(r.other()) == 0:
		return "only allowed differences"
	}
	return "other differences"
}

func (r *result) other() []*parity.Diff {
	var out []*parity.Diff
	for _, d := range r.diffs {
		if !d.Allowed() {
			out = append(out, d)
		}
	}
	return out
}

// TestLinuxKitTrees builds every input of the corpus with lkbuild's tar
// target (the stand-in images pushed first) and compares each tree with
// the manifest recorded from `linuxkit build --format tar` (record.sh).
// Differences docs/compat.md lists are allowed by the named Rules (and an
// input only LinuxKit fails on by FailureRules); any other difference, or a
// build that fails on one side only, fails the test. The summary is always
// logged. LKBUILD_PARITY_RUN=<regexp> selects inputs by key,
// LKBUILD_PARITY_JOBS sets the concurrent builds (default 4) and
// LKBUILD_PARITY_REPORT=<file> writes every differing path with both
// sides' lines.
func TestLinuxKitTrees(t *testing.T) {
	env := testenv.Integration(t)
	if host, _, _ := strings.Cut(parity.Namespace, "/"); env.Registry != "" && env.Registry != host {
		t.Fatalf("the stand-ins live in %s, but LKBUILD_REGISTRY is %s", parity.Namespace, env.Registry)
	}
	start := time.Now()
	inputs, err := parity.Corpus(env.Root)
	if err != nil {
		t.Fatal(err)
	}
	// The stand-ins of the whole corpus, as recorded: an image's layout
	// depends on every role the corpus gives it.
	imgs, err := parity.StandIns(inputs)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]*parity.Image{}
	for _, img := range imgs {
		images[img.Ref] = img
	}
	inputs = selectInputs(inputs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := pushAll(ctx, imgs, 8); err != nil {
		t.Fatal(err)
	}
	pushed := time.Since(start)
	wantContents, err := parity.LoadContents("testdata/contents.json.gz")
	if err != nil {
		t.Fatal(err)
	}

	jobs := 4
	if n, err := strconv.Atoi(os.Getenv("LKBUILD_PARITY_JOBS")); err == nil && n > 0 {
		jobs = n
	}
	results := make([]*result, len(inputs))
	work := t.TempDir()
	var wg sync.WaitGroup
	sem := make(chan struct{}, jobs)
	for i, in := range inputs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = compareInput(ctx, env, filepath.Join(work, strconv.Itoa(i)), in, wantContents, images)
		}()
	}
	wg.Wait()

	summary := summarize(results)
	t.Logf("%d stand-in images pushed in %s; %d inputs compared in %s (%d concurrent builds)\n%s",
		len(imgs), pushed.Round(time.Second), len(inputs), time.Since(start).Round(time.Second), jobs, summary)
	if name := os.Getenv("LKBUILD_PARITY_REPORT"); name != "" {
		if err := os.WriteFile(name, []byte(summary+"\n"+report(results)), 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, r := range results {
		switch r.status() {
		case "harness error":
			t.Errorf("%s: %v", r.in.Key, r.harnessEr)
		case "identical", "only allowed differences", "fail in both", "fail only in linuxkit, allowed":
		default:
			t.Errorf("%s: %s (not in docs/compat.md)\n%s", r.in.Key, r.status(), inputReport(r, 40))
		}
	}
}

func compareInput(ctx context.Context, env testenv.Env, dir string, in parity.Input, wantContents map[string][]byte, images map[string]*parity.Image) *result {
	r := &result{in: in}
	dt, err := os.ReadFile(filepath.Join("testdata/trees", in.Key+".manifest"))
	if err == nil {
		r.rec, err = parity.Parse(dt)
	}
	if err != nil {
		r.harnessEr = fmt.Errorf("%v (record it: hack/parity/record.sh)", err)
		return r
	}
	p, err := parity.Prepare(in, dir)
	if err != nil {
		r.harnessEr = err
		return r
	}
	tarFile := filepath.Join(dir, "rootfs.tar")
	r.buildErr = cli.Build(ctx, cli.BuildOptions{File: p.Files[0], Merge: p.Files[1:], Context: p.Context, Target: "tar",
		Output: "type=tar,dest=" + tarFile, Addr: env.Addr, Helper: env.Helper, Progress: "quiet"})
	if r.buildErr != nil {
		return r
	}
	cfg, err := load(p.Files)
	if err != nil {
		r.harnessEr = err
		return r
	}
	if refs := parity.ForeignImages(cfg); len(refs) > 0 {
		r.harnessEr = fmt.Errorf("image references not rewritten to stand-ins (corpus.go's scan misses them): %s", strings.Join(refs, ", "))
		return r
	}
	if r.rec.Error != "" {
		r.failRule = parity.FailureAllowed(&parity.RuleInput{Config: cfg, Images: images}, r.rec.Error)
		return r
	}
	f, err := os.Open(tarFile)
	if err != nil {
		r.harnessEr = err
		return r
	}
	defer f.Close()
	got, err := parity.Read(f, parity.KeepSmall)
	if err != nil {
		r.harnessEr = err
		return r
	}
	r.diffs = parity.Compare(r.rec.Manifest, got, wantContents, got.Contents)
	parity.ApplyRules(&parity.RuleInput{Config: cfg, Want: r.rec.Manifest, Got: got,
		WantContents: wantContents, GotContents: got.Contents, Images: images}, r.diffs)
	_ = os.RemoveAll(dir)
	return r
}

// load reads the merged configuration of the prepared files.
func load(files []string) (*spec.Config, error) {
	var srcs []spec.Source
	for _, name := range files {
		dt, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, spec.Source{Filename: name, Data: dt})
	}
	cfg, err := spec.Load(srcs...)
	if err != nil {
		return nil, fmt.Errorf("lkbuild built it, but spec.Load fails: %w", err)
	}
	return cfg, nil
}

// summarize counts the inputs by status, the uses of each rule, and the
// other differences by kind with an example each.
func summarize(results []*result) string {
	var b strings.Builder
	count := map[string]int{}
	rules := map[string]int{}
	failRules := map[string]int{}
	type kind struct {
		inputs map[string]bool
		paths  int
		ex     *parity.Diff
		exIn   string
	}
	kinds := map[string]*kind{}
	for _, r := range results {
		count[r.status()]++
		if r.failRule != "" {
			failRules[r.failRule]++
		}
		for _, d := range r.diffs {
			for _, f := range d.Findings {
				if f.Rule != "" {
					rules[f.Rule]++
					continue
				}
				name := d.Kind(f)
				k := kinds[name]
				if k == nil {
					k = &kind{inputs: map[string]bool{}, ex: d, exIn: r.in.Key}
					kinds[name] = k
				}
				k.inputs[r.in.Key] = true
				k.paths++
			}
		}
	}
	fmt.Fprintf(&b, "%d inputs:", len(results))
	for _, s := range []string{"identical", "only allowed differences", "other differences", "fail in both", "fail only in linuxkit, allowed", "fail only in linuxkit", "fail only in lkbuild", "harness error"} {
		fmt.Fprintf(&b, " %s %d;", s, count[s])
	}
	b.WriteString("\nallowed by rule (findings):")
	for _, r := range parity.Rules {
		fmt.Fprintf(&b, " %s %d;", r.Name, rules[r.Name])
	}
	b.WriteString("\ninputs only LinuxKit fails on, allowed by rule:")
	for _, r := range parity.FailureRules {
		fmt.Fprintf(&b, " %s %d;", r.Name, failRules[r.Name])
	}
	var names []string
	for k := range kinds {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		a, c := kinds[names[i]], kinds[names[j]]
		if len(a.inputs) != len(c.inputs) {
			return len(a.inputs) > len(c.inputs)
		}
		return names[i] < names[j]
	})
	fmt.Fprintf(&b, "\n%d kinds of other differences (inputs, findings, an example):", len(names))
	for _, n := range names {
		k := kinds[n]
		fmt.Fprintf(&b, "\n  %s: %d inputs, %d findings, e.g. %s\n    linuxkit: %s\n    lkbuild:  %s", n, len(k.inputs), k.paths, k.exIn,
			parity.Line(k.ex.Want), parity.Line(k.ex.Got))
		for _, f := range k.ex.Findings {
			if f.Detail != "" && k.ex.Kind(f) == n {
				fmt.Fprintf(&b, "\n      %s", f.Detail)
			}
		}
	}
	for _, r := range results {
		switch r.status() {
		case "fail only in linuxkit":
			fmt.Fprintf(&b, "\n%s: linuxkit failed (%s), lkbuild built it", r.in.Key, r.rec.Error)
		case "fail only in linuxkit, allowed":
			fmt.Fprintf(&b, "\n%s: linuxkit failed (%s), lkbuild built it (allowed: %s)", r.in.Key, r.rec.Error, r.failRule)
		case "fail only in lkbuild":
			fmt.Fprintf(&b, "\n%s: lkbuild failed: %v", r.in.Key, firstLine(r.buildErr))
		}
	}
	return b.String()
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// report lists every input's differences.
func report(results []*result) string {
	var b strings.Builder
	for _, r := range results {
		if len(r.diffs) > 0 || r.status() != "identical" {
			fmt.Fprintf(&b, "== %s: %s\n%s\n", r.in.Key, r.status(), inputReport(r, 0))
		}
	}
	return b.String()
}

// inputReport lists an input's differences, the allowed ones with their
// rule; max > 0 limits the lines.
func inputReport(r *result, max int) string {
	var lines []string
	if r.buildErr != nil {
		lines = append(lines, "lkbuild: "+r.buildErr.Error())
	}
	if r.rec != nil && r.rec.Error != "" {
		lines = append(lines, "linuxkit: "+r.rec.Error)
	}
	for _, d := range r.diffs {
		var tags []string
		for _, f := range d.Findings {
			tag := f.Field
			if f.Detail != "" {
				tag += " " + f.Detail
			}
			if f.Rule != "" {
				tag += " (allowed: " + f.Rule + ")"
			}
			tags = append(tags, tag)
		}
		lines = append(lines, fmt.Sprintf("%s\n  linuxkit: %s\n  lkbuild:  %s\n  %s", d.Path, parity.Line(d.Want), parity.Line(d.Got), strings.Join(tags, "\n  ")))
	}
	if max > 0 && len(lines) > max {
		lines = append(lines[:max], fmt.Sprintf("... and %d more", len(lines)-max))
	}
	return strings.Join(lines, "\n")
}

// selectInputs keeps the inputs whose key matches $LKBUILD_PARITY_RUN (a
// regular expression), all of them when it is not set.
func selectInputs(inputs []parity.Input) []parity.Input {
	re := os.Getenv("LKBUILD_PARITY_RUN")
	if re == "" {
		return inputs
	}
	sel := regexp.MustCompile(re)
	var kept []parity.Input
	for _, in := range inputs {
		if sel.MatchString(in.Key) {
			kept = append(kept, in)
		}
	}
	return kept
}

// pushAll pushes the stand-in images, limit at a time.
func pushAll(ctx context.Context, imgs []*parity.Image, limit int) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(limit)
	for _, img := range imgs {
		eg.Go(func() error { return parity.Push(ectx, img) })
	}
	return eg.Wait()
}
