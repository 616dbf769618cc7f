// Command bench times `lkbuild build --target kernel+initrd` end to end on
// LinuxKit's own linuxkit.yml with padded stand-in images, in the
// scenarios of a working day (cold, no change, one files entry changed,
// one service's image changed, cold through a registry 50 ms away), and
// with LINUXKIT=<linuxkit binary> the same scenarios with `linuxkit build
// --format kernel+initrd` in the same run. It prints a Markdown table of
// median times, peak memory and the ratios. `make bench` runs it after the
// writer benchmarks; see hack/README.md. Without the local environment it
// says why and exits 0.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/lkbuild/lkbuild/internal/envfile"
	"gopkg.in/yaml.v3"
)

// linuxkitYML is LinuxKit's own linuxkit.yml (the root of its repository,
// commit 3bf33c3a11fc20b459195294a7d8980cbca4195b, as recorded in
// hack/parity/testdata/linuxkit.txt), unchanged.
//
//go:embed testdata/linuxkit.yml
var linuxkitYML []byte

// Scenario names, in the order they run.
const (
	scCold    = "cold"
	scNone    = "no change"
	scFiles   = "one files entry changed"
	scService = "one service's image changed"
	scProxy   = "cold, registry +50 ms per request"
)

var scenarioKeys = map[string]string{"cold": scCold, "nochange": scNone, "files": scFiles, "service": scService, "proxy": scProxy}

// options are the bench's flags and what check found.
type options struct {
	runs, coldRuns   int
	pad              padding
	latency          time.Duration
	timeout          time.Duration
	lkbuild, helper  string
	linuxkit         string
	registry         string
	buildkitdBin     string
	service          string
	scenarios        map[string]bool
	tmp              string
	keep             bool
	buildkitdBaseCfg string // hack/buildkitd.toml of the repository
}

func main() {
	var o options
	var padMiB, kernelPadMiB float64
	var scen string
	flag.IntVar(&o.runs, "n", 3, "runs of each warm scenario (the median is printed)")
	flag.IntVar(&o.coldRuns, "cold", 1, "runs of each cold scenario")
	flag.Float64Var(&padMiB, "pad", 48, "MiB of executable-like padding in every image but the kernel")
	flag.Float64Var(&kernelPadMiB, "kernel-pad", 192, "MiB of padding modules added to the kernel image's kernel.tar")
	flag.DurationVar(&o.latency, "latency", 50*time.Millisecond, "delay the proxy adds to each registry request")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up on a build that takes longer")
	flag.StringVar(&o.lkbuild, "lkbuild", "bin/lkbuild", "lkbuild binary (make build)")
	// As lkbuild build: the environment, else .lkbuild/env of the working
	// directory or the nearest parent that has one.
	wd, _ := os.Getwd()
	envName, env := envfile.FindFile(wd)
	getenv := func(k string) string { return firstNonEmpty(os.Getenv(k), env[k]) }
	flag.StringVar(&o.helper, "helper-image", getenv("LKBUILD_FRONTEND"), "image providing lkbuild's mkimage helper (default $LKBUILD_FRONTEND, else from .lkbuild/env)")
	flag.StringVar(&o.linuxkit, "linuxkit", os.Getenv("LINUXKIT"), "linuxkit binary: also run every scenario with it (default $LINUXKIT)")
	flag.StringVar(&o.registry, "registry", firstNonEmpty(getenv("LKBUILD_REGISTRY"), "127.0.0.1:5000"), "plain-HTTP registry the stand-ins are pushed to (default $LKBUILD_REGISTRY, else from .lkbuild/env)")
	flag.StringVar(&o.buildkitdBin, "buildkitd", "", "buildkitd binary (default: buildkitd on PATH, else the one make env built beside .lkbuild/env)")
	flag.StringVar(&o.service, "service", "rngd", "the service whose image the service scenario changes")
	flag.StringVar(&scen, "scenarios", "cold,nochange,files,service,proxy", "scenarios to run, comma separated, in this order")
	flag.StringVar(&o.tmp, "tmp", os.TempDir(), "directory for the bench's scratch directory (daemon state, caches, outputs)")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (logs of every build)")
	flag.Parse()
	o.pad = padding{Image: int(padMiB * (1 << 20)), Kernel: int(kernelPadMiB * (1 << 20))}
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(scen, ",") {
		name, ok := scenarioKeys[strings.TrimSpace(s)]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (cold, nochange, files, service, proxy)\n", s)
			os.Exit(2)
		}
		o.scenarios[name] = true
	}
	if o.runs < 1 || o.coldRuns < 1 || o.pad.Image < 0 || o.pad.Kernel < 0 {
		fmt.Fprintln(os.Stderr, "bench: -n and -cold must be at least 1, the paddings at least 0")
		os.Exit(2)
	}
	if o.buildkitdBin == "" {
		if p, err := exec.LookPath("buildkitd"); err == nil {
			o.buildkitdBin = p
		} else if envName != "" {
			o.buildkitdBin = filepath.Join(filepath.Dir(filepath.Dir(envName)), ".cache", "bin", "buildkitd")
		}
	}
	if reason := o.check(); reason != "" {
		fmt.Printf("bench e2e: skipped: %s (needs root, bin/lkbuild and the environment of make env and make images; see hack/README.md)\n", reason)
		return
	}
	if o.linuxkit != "" {
		if fi, err := os.Stat(o.linuxkit); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			fmt.Fprintf(os.Stderr, "bench: LINUXKIT=%s is not an executable file\n", o.linuxkit)
			os.Exit(1)
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// check returns why the bench cannot run here ("" when it can) and fills
// in the paths it found.
func (o *options) check() string {
	if runtime.GOOS != "linux" {
		return "not Linux"
	}
	if os.Geteuid() != 0 {
		return "not root (the bench starts a buildkitd of its own, which runs builds with runc)"
	}
	if o.helper == "" {
		return "LKBUILD_FRONTEND is not set"
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + o.registry + "/v2/")
	if err != nil {
		return fmt.Sprintf("no registry on %s: %v", o.registry, err)
	}
	resp.Body.Close()
	if host, rest, _ := strings.Cut(o.helper, "/"); host == o.registry {
		repo, tag, ok := strings.Cut(rest, ":")
		if !ok {
			tag = "latest"
		}
		req, _ := http.NewRequest(http.MethodHead, "http://"+o.registry+"/v2/"+repo+"/manifests/"+tag, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json")
		if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("helper image %s is not in the registry (make images)", o.helper)
		}
	}
	if fi, err := os.Stat(o.buildkitdBin); o.buildkitdBin == "" || err != nil || fi.Mode()&0o111 == 0 {
		return "no buildkitd on PATH or beside .lkbuild/env"
	}
	if _, err := os.Stat(o.lkbuild); err != nil {
		return fmt.Sprintf("no lkbuild binary at %s (make build)", o.lkbuild)
	}
	lk, err := filepath.Abs(o.lkbuild)
	if err != nil {
		return err.Error()
	}
	o.lkbuild = lk
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if dt, err := os.ReadFile(filepath.Join(d, "hack", "buildkitd.toml")); err == nil {
			o.buildkitdBaseCfg = string(dt)
			break
		}
		if d == filepath.Dir(d) {
			return "hack/buildkitd.toml not found above the working directory (run from the repository)"
		}
	}
	return ""
}

// run prepares the images, YAML files and tools, runs the scenarios and
// prints the table.
func run(ctx context.Context, o options) (err error) {
	work, err := os.MkdirTemp(o.tmp, "lkbuild-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			fmt.Fprintf(os.Stderr, "bench: kept %s\n", work)
			return
		}
		unmountBelow(work)
		if rerr := os.RemoveAll(work); rerr != nil && err == nil {
			err = rerr
		}
	}()
	proxy, err := startProxy("http://"+o.registry, o.latency)
	if err != nil {
		return err
	}
	defer proxy.Close()
	b := &bench{o: o, work: work, proxy: proxy, warm: map[string]bool{}, proxyRequests: map[string]int64{}}
	defer func() {
		for _, t := range b.tools {
			t.Close()
		}
	}()
	if err := b.pushImages(ctx); err != nil {
		return err
	}
	if err := b.setUpTools(); err != nil {
		return err
	}
	var rows []row
	for _, sc := range []string{scCold, scNone, scFiles, scService, scProxy} {
		if o.scenarios[sc] {
			r, err := b.scenario(ctx, sc)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
	}
	b.report(rows)
	return nil
}

// slug makes a scenario's name a file name.
func slug(scenario string) string {
	return strings.NewReplacer(" ", "-", ",", "", "'", "", "+", "").Replace(scenario)
}

// viaHost returns ref with its registry host from replaced by to (ref
// itself when it is on another registry).
func viaHost(ref, from, to string) string {
	if rest, ok := strings.CutPrefix(ref, from+"/"); ok {
		return to + "/" + rest
	}
	return ref
}

// serviceImage returns the image of the named service of a LinuxKit YAML.
func serviceImage(src []byte, name string) (string, error) {
	var cfg struct {
		Services []struct {
			Name  string `yaml:"name"`
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(src, &cfg); err != nil {
		return "", err
	}
	for _, s := range cfg.Services {
		if s.Name == name {
			return s.Image, nil
		}
	}
	return "", fmt.Errorf("linuxkit.yml has no service %q", name)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
