package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"
)

// bench is one run of the benchmark: its scratch directory, the proxy, the
// images, the tools and what each tool has cached.
type bench struct {
	o      options
	work   string
	proxy  *latencyProxy
	set    *imageSet
	svcRef string // the image of the service the service scenario changes, as linuxkit.yml names it
	tools  []tool
	inputs map[string]inputs // per tool
	// warm is true when the tool's cache holds the base YAML's build.
	warm map[string]bool
	// proxyRequests counts the requests each tool's last proxied run sent.
	proxyRequests map[string]int64
}

// inputs are one tool's YAML files and build context: each tool has its
// own, so one's edits never touch the other's inputs.
type inputs struct{ yaml, proxy, context string }

// pushImages pushes the padded stand-ins and, for the service scenario,
// one variant of the service's image per run.
func (b *bench) pushImages(ctx context.Context) error {
	set, err := newImageSet(b.work, b.o.registry, b.o.pad)
	if err != nil {
		return err
	}
	b.set = set
	if b.svcRef, err = serviceImage(linuxkitYML, b.o.service); err != nil {
		return err
	}
	start := time.Now()
	variants := 0
	if b.o.scenarios[scService] {
		variants = b.o.runs
	}
	n, err := set.push(ctx, b.svcRef, variants)
	if err != nil {
		return err
	}
	debug.FreeOSMemory() // the images were large; the bench's own memory is not measured
	fmt.Fprintf(os.Stderr, "bench: %d padded stand-ins in %s (%s, %s per image, %s in kernel.tar) in %s\n",
		n, b.o.registry+"/"+set.prefix(), padVersion, sizeName(b.o.pad.Image), sizeName(b.o.pad.Kernel), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// setUpTools makes the tools and writes each one's YAML files and context.
func (b *bench) setUpTools() error {
	o := b.o
	b.tools = append(b.tools, &lkbuildTool{bin: o.lkbuild, helper: o.helper, helperProxy: viaHost(o.helper, o.registry, b.proxy.Host),
		buildkitd: o.buildkitdBin, config: daemonConfig(o.buildkitdBaseCfg, b.proxy.Host), dir: filepath.Join(b.work, "lkbuild")})
	if o.linuxkit != "" {
		b.tools = append(b.tools, &linuxkitTool{bin: o.linuxkit, cache: filepath.Join(b.work, "linuxkit", "cache"), home: filepath.Join(b.work, "linuxkit", "home")})
	}
	b.inputs = map[string]inputs{}
	for _, t := range b.tools {
		dir := filepath.Join(b.work, t.Name())
		i := inputs{yaml: filepath.Join(dir, "yaml", "linuxkit.yml"), proxy: filepath.Join(dir, "yaml", "linuxkit-proxy.yml"), context: filepath.Join(dir, "context")}
		for _, d := range []string{filepath.Join(dir, "yaml"), i.context, filepath.Join(dir, "home"), filepath.Join(dir, "logs")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := b.set.writeYAML(i.yaml, o.registry, b.svcRef, 0); err != nil {
			return err
		}
		if err := b.set.writeYAML(i.proxy, b.proxy.Host, b.svcRef, 0); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(i.context, stampSource), []byte("bench\n"), 0o644); err != nil {
			return err
		}
		b.inputs[t.Name()] = i
	}
	return nil
}

// scenario runs one scenario with every tool, one tool after the other.
func (b *bench) scenario(ctx context.Context, sc string) (row, error) {
	r := row{Scenario: sc, Runs: map[string][]result{}}
	if sc == scProxy {
		r.Scenario = fmt.Sprintf("cold, registry +%s per request", b.o.latency)
	}
	cold := sc == scCold || sc == scProxy
	runs := b.o.runs
	if cold {
		runs = b.o.coldRuns
	}
	for _, t := range b.tools {
		i := b.inputs[t.Name()]
		if !cold && !b.warm[t.Name()] {
			// A warm scenario first: build once, unmeasured.
			if _, err := b.build(ctx, t, i.yaml, false, "warm-up", 0); err != nil {
				return r, err
			}
			b.warm[t.Name()] = true
		}
		for k := 1; k <= runs; k++ {
			yml, viaProxy, err := b.prepare(ctx, t, sc, k)
			if err != nil {
				return r, err
			}
			before := b.proxy.Requests()
			res, err := b.build(ctx, t, yml, viaProxy, sc, k)
			if err != nil {
				return r, err
			}
			if viaProxy {
				b.proxyRequests[t.Name()] = b.proxy.Requests() - before
			}
			r.Runs[t.Name()] = append(r.Runs[t.Name()], res)
			fmt.Fprintf(os.Stderr, "bench: %-8s %s %d/%d: %s, peak %s, mkimage %s, buildkitd %s, initrd %.0f MB\n", t.Name(), r.Scenario, k, runs,
				secs(res.Wall), mib(res.PeakRSS), mib(res.Mkimage), mib(res.Daemon), float64(res.Initrd)/1e6)
		}
		// After the proxied cold build the cache holds the proxy's names.
		b.warm[t.Name()] = sc != scProxy
	}
	return r, nil
}

// prepare makes the change of run k of scenario sc for the tool and
// returns the YAML to build and whether it names images through the proxy.
func (b *bench) prepare(ctx context.Context, t tool, sc string, k int) (string, bool, error) {
	i := b.inputs[t.Name()]
	switch sc {
	case scCold:
		return i.yaml, false, t.Reset(ctx)
	case scProxy:
		return i.proxy, true, t.Reset(ctx)
	case scFiles:
		return i.yaml, false, os.WriteFile(filepath.Join(i.context, stampSource), []byte(fmt.Sprintf("files run %d\n", k)), 0o644)
	case scService:
		yml := filepath.Join(filepath.Dir(i.yaml), fmt.Sprintf("linuxkit-service-v%d.yml", k))
		return yml, false, b.set.writeYAML(yml, b.o.registry, b.svcRef, k)
	}
	return i.yaml, false, nil
}

// build runs one build of the tool into a fresh output directory, which
// it removes afterwards (the initrds are large).
func (b *bench) build(ctx context.Context, t tool, yml string, viaProxy bool, scenario string, k int) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	dir := filepath.Join(b.work, t.Name())
	out := filepath.Join(dir, "out")
	_ = os.RemoveAll(out)
	res, err := t.Build(ctx, job{YAML: yml, Context: b.inputs[t.Name()].context, Out: out, Proxy: viaProxy,
		Log: filepath.Join(dir, "logs", fmt.Sprintf("%s-%d.log", slug(scenario), k))})
	if err != nil {
		return res, fmt.Errorf("%s, %s, run %d: %w", t.Name(), scenario, k, err)
	}
	return res, os.RemoveAll(out)
}

// report prints the table and, below it, each tool's initrd size, the
// peak memory of lkbuild's buildkitd and the proxied requests.
func (b *bench) report(rows []row) {
	o := b.o
	fmt.Printf("\nkernel+initrd of LinuxKit's linuxkit.yml, padded stand-ins (%s per image, %s in kernel.tar), medians; peak memory is the highest over the runs\n\n",
		sizeName(o.pad.Image), sizeName(o.pad.Kernel))
	writeTable(os.Stdout, rows, o.linuxkit != "")
	fmt.Println()
	for _, t := range b.tools {
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
		if n, ok := b.proxyRequests[t.Name()]; ok {
			fmt.Printf(", %d registry requests through the proxy in its last cold run", n)
		}
		fmt.Println()
	}
	fmt.Printf("lkbuild: %s, helper %s; runs: %d warm, %d cold\n", o.lkbuild, o.helper, o.runs, o.coldRuns)
	if o.linuxkit != "" {
		fmt.Printf("linuxkit: %s\n", o.linuxkit)
	}
}
