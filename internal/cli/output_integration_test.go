package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
)

// writeYAML writes a YAML that needs no image: its root filesystem is its
// files entries (contents by path).
func writeYAML(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("files:\n")
	for p, c := range files {
		b.WriteString("  - {path: " + p + ", contents: " + c + "}\n")
	}
	yml := filepath.Join(dir, "x.yml")
	if err := os.WriteFile(yml, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return yml
}

func buildInto(t *testing.T, env testenv.Env, yml, out string, o BuildOptions) error {
	t.Helper()
	o.File, o.Context, o.Target, o.Output = yml, filepath.Dir(yml), "tar", out
	o.Addr, o.Helper = env.Addr, env.Helper
	if o.Progress == "" {
		o.Progress = "quiet"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return Build(ctx, o)
}

// TestBuildKeepsOutputData: a tree target into an output directory that
// holds other files replaces its own files only (etc/ of the root
// filesystem used to replace the whole existing etc/).
func TestBuildKeepsOutputData(t *testing.T) {
	env := testenv.Integration(t)
	out := t.TempDir()
	tree(t, out, map[string]string{"etc/keep": "mine", "etc/app": "old", "notes.txt": "mine"})
	yml := writeYAML(t, t.TempDir(), map[string]string{"etc/app": "new", "etc/other": "new"})
	if err := buildInto(t, env, yml, out, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, out)
	for p, want := range map[string]string{"etc/keep": "mine", "notes.txt": "mine", "etc/app": "new", "etc/other": "new"} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	for p := range got {
		if strings.HasPrefix(p, ".lkbuild") {
			t.Errorf("%s left in the output directory", p)
		}
	}
}

// TestBuildIntoAnotherFilesystem: an output directory that is a mount point
// (here a tmpfs) receives the artifacts (the move used to fail with EXDEV
// after a successful build, with the old artifact already deleted).
func TestBuildIntoAnotherFilesystem(t *testing.T) {
	env := testenv.Integration(t)
	out := tmpfsDir(t)
	tree(t, out, map[string]string{"etc/app": "old", "etc/keep": "mine"})
	yml := writeYAML(t, t.TempDir(), map[string]string{"etc/app": "new"})
	if err := buildInto(t, env, yml, out, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, out)
	if got["etc/app"] != "new" || got["etc/keep"] != "mine" {
		t.Errorf("etc/app %q, etc/keep %q; want new, mine", got["etc/app"], got["etc/keep"])
	}
	// A tar file on another filesystem than its directory's... is the
	// same case for the tar output: its temporary file is next to it.
	tarFile := filepath.Join(out, "rootfs.tar")
	if err := buildInto(t, env, yml, "type=tar,dest="+tarFile, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(tarFile); err != nil || fi.Size() == 0 {
		t.Errorf("tar output: %v", err)
	}
}

// TestConcurrentBuildsIntoOneDirectory: a second build into a directory
// another build is writing waits for it, so their artifacts never mix; the
// last one's are what stays.
func TestConcurrentBuildsIntoOneDirectory(t *testing.T) {
	env := testenv.Integration(t)
	old := lockPoll
	lockPoll = 20 * time.Millisecond
	t.Cleanup(func() { lockPoll = old })
	out := filepath.Join(t.TempDir(), "out")
	ymlA := writeYAML(t, t.TempDir(), map[string]string{"etc/who": "A", "etc/a-only": "A"})
	ymlB := writeYAML(t, t.TempDir(), map[string]string{"etc/who": "B"})

	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A holds the directory: its build stalls at its first progress
		// update until the test lets it go on.
		errA = buildInto(t, env, ymlA, out, BuildOptions{OnStatus: func(*client.SolveStatus) {
			once.Do(func() { close(started); <-release })
		}})
	}()
	<-started
	var log syncBuffer
	doneB := make(chan struct{})
	go func() {
		errB = buildInto(t, env, ymlB, out, BuildOptions{Log: &log, Progress: "plain"})
		close(doneB)
	}()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(log.String(), "lkbuild: waiting for another build writing into "+out) && time.Now().Before(deadline) {
		select {
		case <-doneB:
			close(release)
			wg.Wait()
			t.Fatalf("the second build finished while the first was writing into the directory: %v\n%s", errB, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-doneB:
		t.Error("the second build did not wait")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	<-doneB
	if errA != nil || errB != nil {
		t.Fatalf("builds: %v, %v", errA, errB)
	}
	got := readTree(t, out)
	if got["etc/who"] != "B" || got["etc/a-only"] != "A" {
		t.Errorf("etc/who %q etc/a-only %q: want B (the last build) and A (a file of A's only)", got["etc/who"], got["etc/a-only"])
	}
	if !strings.Contains(log.String(), "waiting for another build writing into "+out) {
		t.Errorf("the second build did not say it waits:\n%s", log.String())
	}
}
