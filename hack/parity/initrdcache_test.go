package parity_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/hack/parity"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// TestInitrdCacheCorpus builds inputs of the corpus as kernel+initrd
// without the initrd cache, then twice with one cache shared by all of
// them (the second time from the cache), and fails unless the three give
// the same artifacts: bytes, modes and times; or all three fail. It runs
// only with LKBUILD_PARITY_INITRD=1 (it is long); LKBUILD_PARITY_RUN and
// LKBUILD_PARITY_JOBS (default 2) as for TestLinuxKitTrees;
// LKBUILD_PARITY_PLATFORMS sets --platform (e.g. linux/amd64,linux/arm64).
func TestInitrdCacheCorpus(t *testing.T) {
	if os.Getenv("LKBUILD_PARITY_INITRD") != "1" {
		t.Skip("LKBUILD_PARITY_INITRD=1 runs it")
	}
	env := testenv.Integration(t)
	inputs, err := parity.Corpus(env.Root)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := parity.StandIns(inputs)
	if err != nil {
		t.Fatal(err)
	}
	inputs = selectInputs(inputs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := pushAll(ctx, imgs, 4); err != nil {
		t.Fatal(err)
	}
	jobs := 2
	if n, err := strconv.Atoi(os.Getenv("LKBUILD_PARITY_JOBS")); err == nil && n > 0 {
		jobs = n
	}
	cache, work := t.TempDir(), t.TempDir()
	var mu sync.Mutex
	var built, failed int
	var wg sync.WaitGroup
	sem := make(chan struct{}, jobs)
	for i, in := range inputs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dir := filepath.Join(work, strconv.Itoa(i))
			p, err := parity.Prepare(in, dir)
			if err != nil {
				t.Errorf("%s: %v", in.Key, err)
				return
			}
			var outs []string
			var errs []error
			for j, c := range []string{cli.InitrdCacheNone, cache, cache} {
				out := filepath.Join(dir, fmt.Sprintf("out%d", j))
				outs = append(outs, out)
				errs = append(errs, cli.Build(ctx, cli.BuildOptions{File: p.Files[0], Merge: p.Files[1:], Context: p.Context,
					Target: "kernel+initrd", Platform: os.Getenv("LKBUILD_PARITY_PLATFORMS"), Output: out, Addr: env.Addr, Helper: env.Helper, Progress: "quiet",
					InitrdCache: c, Log: &bytes.Buffer{}}))
			}
			mu.Lock()
			defer mu.Unlock()
			if errs[0] != nil {
				failed++
				for j, err := range errs[1:] {
					if err == nil {
						t.Errorf("%s: fails without the cache (%v), not with it (build %d)", in.Key, errs[0], j+1)
					}
				}
				return
			}
			built++
			for j, err := range errs[1:] {
				if err != nil {
					t.Errorf("%s: with the cache (build %d): %v", in.Key, j+1, err)
					continue
				}
				if d := treeDiff(outs[0], outs[j+1]); d != "" {
					t.Errorf("%s: with the cache (build %d): %s", in.Key, j+1, d)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d inputs built the same with and without the cache, %d fail without it", built, failed)
}

// treeDiff tells how the trees a and b differ (names, kinds, modes,
// times, bytes), or "".
func treeDiff(a, b string) string {
	list := func(root string) (map[string]os.FileInfo, error) {
		m := map[string]os.FileInfo{}
		err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if p != root {
				m[strings.TrimPrefix(p, root)] = fi
			}
			return nil
		})
		return m, err
	}
	la, err := list(a)
	if err != nil {
		return err.Error()
	}
	lb, err := list(b)
	if err != nil {
		return err.Error()
	}
	var d []string
	for n, fa := range la {
		fb, ok := lb[n]
		switch {
		case !ok:
			d = append(d, n+": only without the cache")
		case fa.Mode() != fb.Mode() || !fa.ModTime().Equal(fb.ModTime()) || fa.Size() != fb.Size():
			d = append(d, fmt.Sprintf("%s: %v %v %d against %v %v %d", n, fa.Mode(), fa.ModTime(), fa.Size(), fb.Mode(), fb.ModTime(), fb.Size()))
		case fa.Mode().IsRegular():
			x, _ := os.ReadFile(filepath.Join(a, n))
			y, _ := os.ReadFile(filepath.Join(b, n))
			if !bytes.Equal(x, y) {
				d = append(d, n+": bytes differ")
			}
		}
	}
	for n := range lb {
		if _, ok := la[n]; !ok {
			d = append(d, n+": only with the cache")
		}
	}
	return strings.Join(d, "; ")
}
