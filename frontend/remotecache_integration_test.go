package frontend_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
)

// ownBuildkitd starts a buildkitd of the test's own, with a fresh state
// directory and the environment's configuration (hack/buildkitd.toml), and
// returns its address; it is stopped when the test ends. It stands for a
// fresh CI runner: nothing of the shared daemon's cache is in it.
func ownBuildkitd(t *testing.T, env testenv.Env) string {
	t.Helper()
	bin, err := exec.LookPath("buildkitd")
	if err != nil {
		t.Skip("buildkitd not in PATH (source .lkbuild/env)")
	}
	dir := t.TempDir()
	addr := "unix://" + filepath.Join(dir, "buildkitd.sock")
	var log bytes.Buffer
	cmd := exec.Command(bin, "--config", filepath.Join(env.Root, "hack/buildkitd.toml"), "--root", filepath.Join(dir, "root"), "--addr", addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(200 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("buildkitd exited: %s", log.String())
		default:
		}
		if exec.Command("buildctl", "--addr", addr, "debug", "workers").Run() == nil {
			return addr
		}
	}
	t.Fatalf("buildkitd did not come up: %s", log.String())
	return ""
}

// buildctlBuild builds yml's kernel+initrd with buildctl and the frontend
// image on the daemon at addr, with the given cache flags, and returns the
// output directory and, for every initrd segment and mkimage step, whether
// it came from the cache (did not run).
func buildctlBuild(t *testing.T, env testenv.Env, addr, yml string, cache ...string) (string, map[string]bool) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	args := append([]string{"--addr", addr, "build", "--progress", "rawjson", "--frontend", "gateway.v0",
		"--opt", "source=" + env.Helper, "--local", "context=" + filepath.Dir(yml), "--local", "dockerfile=" + filepath.Dir(yml),
		"--opt", "filename=" + filepath.Base(yml), "--opt", "target=kernel+initrd", "--output", "type=local,dest=" + out}, cache...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "buildctl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("buildctl: %v\n%s", err, tail(stderr.String(), 4000))
	}
	// A step whose result came from the remote cache may be reported
	// twice, cached and then completed again while its result is
	// fetched: a step ran when it wrote its log line (mkimage says what
	// it wrote).
	names := map[string]string{}
	wrote := map[string]bool{}
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var st client.SolveStatus
		if json.Unmarshal(sc.Bytes(), &st) != nil {
			continue
		}
		for _, v := range st.Vertexes {
			if strings.HasPrefix(v.Name, "[initrd] segment") || strings.Contains(v.Name, "lkbuild mkimage") {
				names[v.Digest.String()] = v.Name
			}
		}
		for _, l := range st.Logs {
			if bytes.Contains(l.Data, []byte(": wrote ")) {
				wrote[l.Vertex.String()] = true
			}
		}
	}
	steps := map[string]bool{}
	for d, n := range names {
		steps[n] = !wrote[d]
	}
	return out, steps
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestRemoteCacheSegments: a build exported to a registry cache
// (--export-cache type=registry,mode=max) is answered from it by a fresh
// daemon (--import-cache) when nothing changed, with the same initrd; and
// after a change to one service, a fresh daemon writes only that service's
// segment and the concatenation again.
func TestRemoteCacheSegments(t *testing.T) {
	env := testenv.Integration(t)
	testenv.CacheSensitive(t)
	if env.Registry == "" {
		t.Skip("no LKBUILD_REGISTRY")
	}
	if _, err := exec.LookPath("buildctl"); err != nil {
		t.Skip("buildctl not in PATH (source .lkbuild/env)")
	}
	orig, err := os.ReadFile(filepath.Join(env.Root, "examples/minimal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	mark := time.Now().UnixNano()
	dir := t.TempDir()
	yml := filepath.Join(dir, "minimal.yml")
	// A files entry of this run's own: the cache holds nothing of it yet.
	base := string(orig) + fmt.Sprintf("files:\n  - path: etc/lkbuild-mark\n    contents: \"%d\"\n", mark)
	if err := os.WriteFile(yml, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := fmt.Sprintf("%s/cachetest/initrd-segments:%d", env.Registry, mark)
	export := []string{"--export-cache", "type=registry,ref=" + ref + ",mode=max,registry.insecure=true"}
	imp := []string{"--import-cache", "type=registry,ref=" + ref + ",registry.insecure=true"}

	first, _ := buildctlBuild(t, env, ownBuildkitd(t, env), yml, export...)

	start := time.Now()
	again, steps := buildctlBuild(t, env, ownBuildkitd(t, env), yml, imp...)
	t.Logf("no change, fresh daemon with the registry cache: %s", time.Since(start).Round(10*time.Millisecond))
	if len(steps) == 0 {
		t.Fatal("no segment or mkimage step reported")
	}
	for name, cached := range steps {
		if !cached {
			t.Errorf("no change: %q ran instead of coming from the cache", name)
		}
	}
	for _, n := range []string{"minimal-initrd.img", "minimal-kernel"} {
		a, _ := os.ReadFile(filepath.Join(first, n))
		b, _ := os.ReadFile(filepath.Join(again, n))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s from the cache differs from the first build's", n)
		}
	}

	changed := strings.Replace(base, "    readonly: true\n", fmt.Sprintf("    readonly: true\n    env:\n      - MARK=%d\n", mark), 1)
	if err := os.WriteFile(yml, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, steps = buildctlBuild(t, env, ownBuildkitd(t, env), yml, imp...)
	t.Logf("one service changed, fresh daemon with the registry cache: %s", time.Since(start).Round(10*time.Millisecond))
	checkSteps(t, "one service changed, fresh daemon", steps, map[string]bool{
		"[initrd] segment of the base's /containers":          true,
		"[initrd] segment of onboot 000-hello (busybox:1.36)": true,
		"[initrd] segment of services httpd (busybox:1.36)":   false,
		"[initrd] segment of the kernel's modules":            true,
		"[initrd] segment of the base (init)":                 true,
		"[initrd] segment of the files":                       true,
		"[kernel+initrd] lkbuild mkimage":                     false,
	})
}
