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
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/lkbuild/lkbuild/hack/parity"
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

type options struct {
	runs, coldRuns   int
	pad              padding
	latency          time.Duration
	lkbuild, helper  string
	linuxkit         string
	registry         string
	buildkitdBin     string
	service          string
	scenarios        map[string]bool
	tmp              string
	keep             bool
	root             string // repository root
	buildkitdBaseCfg string
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
			o.root, o.buildkitdBaseCfg = d, string(dt)
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

	set, err := newImageSet(work, o.registry, o.pad)
	if err != nil {
		return err
	}
	svcRef, err := serviceImage(linuxkitYML, o.service)
	if err != nil {
		return err
	}
	start := time.Now()
	variants := 0
	if o.scenarios[scService] {
		variants = o.runs
	}
	n, err := set.push(ctx, svcRef, variants)
	if err != nil {
		return err
	}
	debug.FreeOSMemory() // the images were large; the bench's own memory is not measured
	fmt.Fprintf(os.Stderr, "bench: %d padded stand-ins in %s (%s, %s per image, %s in kernel.tar) in %s\n",
		n, o.registry+"/"+set.prefix(), padVersion, sizeName(o.pad.Image), sizeName(o.pad.Kernel), time.Since(start).Round(100*time.Millisecond))

	var tools []tool
	lk := &lkbuildTool{bin: o.lkbuild, helper: o.helper, helperProxy: viaHost(o.helper, o.registry, proxy.Host),
		buildkitd: o.buildkitdBin, config: daemonConfig(o.buildkitdBaseCfg, proxy.Host), dir: filepath.Join(work, "lkbuild")}
	tools = append(tools, lk)
	if o.linuxkit != "" {
		tools = append(tools, &linuxkitTool{bin: o.linuxkit, cache: filepath.Join(work, "linuxkit", "cache"), home: filepath.Join(work, "linuxkit", "home")})
	}
	defer func() {
		for _, t := range tools {
			t.Close()
		}
	}()

	// Each tool has its own YAML directory and build context, so one's
	// edits never touch the other's inputs.
	type inputs struct{ yaml, proxy, context string }
	in := map[string]inputs{}
	for _, t := range tools {
		dir := filepath.Join(work, t.Name())
		i := inputs{yaml: filepath.Join(dir, "yaml", "linuxkit.yml"), proxy: filepath.Join(dir, "yaml", "linuxkit-proxy.yml"), context: filepath.Join(dir, "context")}
		for _, d := range []string{filepath.Join(dir, "yaml"), i.context, filepath.Join(dir, "home"), filepath.Join(dir, "logs")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := set.writeYAML(i.yaml, o.registry, svcRef, 0); err != nil {
			return err
		}
		if err := set.writeYAML(i.proxy, proxy.Host, svcRef, 0); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(i.context, stampSource), []byte("bench\n"), 0o644); err != nil {
			return err
		}
		in[t.Name()] = i
	}

	var rows []row
	warm := map[string]bool{}
	proxyRequests := map[string]int64{}
	for _, sc := range []string{scCold, scNone, scFiles, scService, scProxy} {
		if !o.scenarios[sc] {
			continue
		}
		r := row{Scenario: sc, Runs: map[string][]result{}}
		if sc == scProxy {
			r.Scenario = fmt.Sprintf("cold, registry +%s per request", o.latency)
		}
		for _, t := range tools {
			i := in[t.Name()]
			runs := o.runs
			if sc == scCold || sc == scProxy {
				runs = o.coldRuns
			}
			if sc != scCold && sc != scProxy && !warm[t.Name()] {
				// A warm scenario first: build once, unmeasured.
				if _, err := buildOnce(ctx, t, i.yaml, i.context, false, work, "warm-up", 0); err != nil {
					return err
				}
				warm[t.Name()] = true
			}
			for k := 1; k <= runs; k++ {
				yml, viaProxy := i.yaml, false
				switch sc {
				case scCold:
					if err := t.Reset(ctx); err != nil {
						return err
					}
				case scProxy:
					if err := t.Reset(ctx); err != nil {
						return err
					}
					yml, viaProxy = i.proxy, true
				case scFiles:
					if err := os.WriteFile(filepath.Join(i.context, stampSource), []byte(fmt.Sprintf("files run %d\n", k)), 0o644); err != nil {
						return err
					}
				case scService:
					yml = filepath.Join(filepath.Dir(i.yaml), fmt.Sprintf("linuxkit-service-v%d.yml", k))
					if err := set.writeYAML(yml, o.registry, svcRef, k); err != nil {
						return err
					}
				}
				before := proxy.Requests()
				res, err := buildOnce(ctx, t, yml, i.context, viaProxy, work, sc, k)
				if err != nil {
					return err
				}
				if viaProxy {
					proxyRequests[t.Name()] = proxy.Requests() - before
				}
				r.Runs[t.Name()] = append(r.Runs[t.Name()], res)
				fmt.Fprintf(os.Stderr, "bench: %-8s %s %d/%d: %s, peak %s, mkimage %s, buildkitd %s, initrd %.0f MB\n", t.Name(), r.Scenario, k, runs,
					secs(res.Wall), mib(res.PeakRSS), mib(res.Mkimage), mib(res.Daemon), float64(res.Initrd)/1e6)
			}
			if sc == scProxy {
				warm[t.Name()] = false // its cache holds the proxy's names now
			} else {
				warm[t.Name()] = true
			}
		}
		rows = append(rows, r)
	}

	fmt.Printf("\nkernel+initrd of LinuxKit's linuxkit.yml, padded stand-ins (%s per image, %s in kernel.tar), medians; peak memory is the highest over the runs\n\n",
		sizeName(o.pad.Image), sizeName(o.pad.Kernel))
	writeTable(os.Stdout, rows, o.linuxkit != "")
	fmt.Println()
	for _, t := range tools {
		var size, daemon int64 = 0, -1
		for _, r := range rows {
			for _, res := range r.Runs[t.Name()] {
				size, daemon = res.Initrd, max(daemon, res.Daemon)
			}
		}
		fmt.Printf("%s: initrd %.0f MB", t.Name(), float64(size)/1e6)
		if daemon >= 0 {
			fmt.Printf(", its buildkitd's peak memory %s", mib(daemon))
		}
		if n, ok := proxyRequests[t.Name()]; ok {
			fmt.Printf(", %d registry requests through the proxy in its last cold run", n)
		}
		fmt.Println()
	}
	fmt.Printf("lkbuild: %s, helper %s; runs: %d warm, %d cold\n", o.lkbuild, o.helper, o.runs, o.coldRuns)
	if o.linuxkit != "" {
		fmt.Printf("linuxkit: %s\n", o.linuxkit)
	}
	return nil
}

// buildOnce runs one build of the tool into a fresh output directory,
// which it removes afterwards (the initrds are large).
func buildOnce(ctx context.Context, t tool, yml, context string, viaProxy bool, work, scenario string, k int) (result, error) {
	slug := strings.NewReplacer(" ", "-", ",", "", "'", "", "+", "").Replace(scenario)
	out := filepath.Join(work, t.Name(), "out")
	_ = os.RemoveAll(out)
	res, err := t.Build(ctx, job{YAML: yml, Context: context, Out: out, Proxy: viaProxy,
		Log: filepath.Join(work, t.Name(), "logs", fmt.Sprintf("%s-%d.log", slug, k))})
	if err != nil {
		return res, fmt.Errorf("%s, %s, run %d: %w", t.Name(), scenario, k, err)
	}
	return res, os.RemoveAll(out)
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

var errNoKernel = errors.New("linuxkit.yml names no kernel image")

// imageSet is the padded stand-ins of linuxkit.yml: every image it names,
// under <registry>/bench/<padding key>/ with the repository path parity's
// rewrite gives (library/ for Docker Hub's official images).
type imageSet struct {
	registry string
	pad      padding
	uses     []parity.ImageUse // parity's names and roles
	yamlSrc  []byte
}

func newImageSet(work, registry string, pad padding) (*imageSet, error) {
	dir := filepath.Join(work, "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "linuxkit.yml"), linuxkitYML, 0o644); err != nil {
		return nil, err
	}
	uses, err := parity.Images([]parity.Input{parity.NewInput(dir, "linuxkit.yml")})
	if err != nil {
		return nil, err
	}
	kernel := false
	for _, u := range uses {
		kernel = kernel || u.Roles[parity.RoleKernel]
	}
	if !kernel {
		return nil, errNoKernel
	}
	return &imageSet{registry: registry, pad: pad, uses: uses, yamlSrc: linuxkitYML}, nil
}

// prefix is the namespace of the set's images in a registry.
func (s *imageSet) prefix() string { return "bench/" + s.pad.key() + "/" }

// name returns the name under host of the image parity calls ref; variant
// k > 0 gets the tag <tag>-v<k>.
func (s *imageSet) name(host, ref string, k int) string {
	n := host + "/" + s.prefix() + strings.TrimPrefix(ref, parity.Namespace)
	if k > 0 {
		if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
			n += fmt.Sprintf("-v%d", k)
		} else {
			n += fmt.Sprintf(":latest-v%d", k)
		}
	}
	return n
}

// push pushes every padded stand-in and variants 1..variants of the image
// the YAML names as svcRef; it returns how many images that is. Pushing
// what the registry already has changes nothing (see parity.Push).
func (s *imageSet) push(ctx context.Context, svcRef string, variants int) (int, error) {
	svc := parity.Rewrite(svcRef)
	n := 0
	for _, u := range s.uses {
		base, err := parity.StandIn(u.Ref, u.Roles)
		if err != nil {
			return n, err
		}
		ks := []int{0}
		if u.Ref == svc {
			for k := 1; k <= variants; k++ {
				ks = append(ks, k)
			}
		}
		for _, k := range ks {
			name := s.name(s.registry, u.Ref, k)
			img, err := padImage(base, name, u.Roles[parity.RoleKernel], s.pad, strings.TrimPrefix(name, s.registry+"/"))
			if err != nil {
				return n, err
			}
			if err := parity.Push(ctx, img); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// writeYAML writes linuxkit.yml with its images named under host and the
// service image svcRef as variant k (0: the original), plus the bench's
// files entry.
func (s *imageSet) writeYAML(file, host, svcRef string, k int) error {
	out, err := rewriteYAML(s.yamlSrc, func(ref string) (string, error) {
		r := parity.Rewrite(ref)
		if !strings.HasPrefix(r, parity.Namespace) {
			return "", fmt.Errorf("image %q: not a name the bench can stand in for", ref)
		}
		v := 0
		if ref == svcRef {
			v = k
		}
		return s.name(host, r, v), nil
	})
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o644)
}
