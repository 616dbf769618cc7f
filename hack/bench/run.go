package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// initrdName is the file both tools write the initrd to (--name linuxkit,
// NAME=linuxkit).
const initrdName = "linuxkit-initrd.img"

// result is one measured build.
type result struct {
	Wall    time.Duration
	PeakRSS int64 // bytes: the tool's process (lkbuild's client, linuxkit)
	// Mkimage is the peak resident memory of lkbuild's mkimage helper
	// processes (bytes), -1 when none was seen.
	Mkimage int64
	// Daemon is the peak resident memory of lkbuild's buildkitd since it
	// started (bytes; the cold run's daemon starts empty), -1 for linuxkit.
	Daemon int64
	Initrd int64 // bytes
}

// job is one build: the YAML, its context and the output directory.
type job struct {
	YAML, Context, Out string
	Proxy              bool   // images (and lkbuild's helper) through the latency proxy
	Log                string // the tool's output goes here
}

// tool builds kernel+initrd from a job.
type tool interface {
	Name() string
	// Reset forgets everything cached: the next build is cold.
	Reset(ctx context.Context) error
	Build(ctx context.Context, j job) (result, error)
	Close()
}

// lkbuildTool runs `lkbuild build` against a buildkitd of its own.
type lkbuildTool struct {
	bin, helper, helperProxy string
	buildkitd, config, dir   string
	d                        *buildkitd
}

func (t *lkbuildTool) Name() string { return "lkbuild" }

func (t *lkbuildTool) Reset(ctx context.Context) error {
	t.Close()
	if err := os.RemoveAll(t.initrdCache()); err != nil {
		return err
	}
	d, err := startBuildkitd(ctx, t.buildkitd, t.config, t.dir)
	t.d = d
	return err
}

// initrdCache is the tool's cache of initrd parts (lkbuild build
// --initrd-cache), which Reset empties with the daemon's state.
func (t *lkbuildTool) initrdCache() string { return filepath.Join(t.dir, "initrd-cache") }

func (t *lkbuildTool) Close() {
	if t.d != nil {
		t.d.stop()
		t.d = nil
	}
}

func (t *lkbuildTool) Build(ctx context.Context, j job) (result, error) {
	if t.d == nil {
		if err := t.Reset(ctx); err != nil {
			return result{}, err
		}
	}
	helper := t.helper
	if j.Proxy {
		helper = t.helperProxy
	}
	cmd := exec.CommandContext(ctx, t.bin, "build", "-f", j.YAML, "--target", "kernel+initrd", "-o", j.Out,
		"--addr", t.d.addr, "--helper-image", helper, "--initrd-cache", t.initrdCache(), "--build-arg", "NAME=linuxkit", "--progress", "plain", j.Context)
	cmd.Dir = t.dir
	w := watchMkimage(t.d.pid(), 50*time.Millisecond)
	r, err := measure(cmd, j)
	r.Mkimage = w()
	r.Daemon = vmHWM(t.d.pid())
	return r, err
}

// linuxkitTool runs `linuxkit build --format kernel+initrd` with its image
// cache in a directory of its own.
type linuxkitTool struct {
	bin, cache, home string
}

func (t *linuxkitTool) Name() string { return "linuxkit" }

func (t *linuxkitTool) Reset(context.Context) error {
	if err := os.RemoveAll(t.cache); err != nil {
		return err
	}
	return os.MkdirAll(t.cache, 0o755)
}

func (t *linuxkitTool) Close() {}

func (t *linuxkitTool) Build(ctx context.Context, j job) (result, error) {
	cmd := exec.CommandContext(ctx, t.bin, "build", "--format", "kernel+initrd", "--cache", t.cache,
		"--dir", j.Out, "--name", "linuxkit", j.YAML)
	// files[].source is relative to the working directory; no docker.
	cmd.Dir = j.Context
	cmd.Env = append(os.Environ(), "HOME="+t.home, "DOCKER_HOST=unix:///nonexistent")
	return measure(cmd, j)
}

// measure runs cmd with its output in j.Log (creating j.Out first) and
// returns its wall time and peak resident memory, then the size of the
// initrd it wrote.
func measure(cmd *exec.Cmd, j job) (result, error) {
	if err := os.MkdirAll(j.Out, 0o755); err != nil {
		return result{}, err
	}
	logf, err := os.Create(j.Log)
	if err != nil {
		return result{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	r, err := runPeak(cmd)
	if err != nil {
		return r, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(j.Log, 15))
	}
	fi, err := os.Stat(filepath.Join(j.Out, initrdName))
	if err != nil {
		return r, fmt.Errorf("%s wrote no %s: %w", filepath.Base(cmd.Path), initrdName, err)
	}
	r.Initrd = fi.Size()
	return r, nil
}

// runPeak runs cmd and returns its wall time and peak resident memory.
//
// The kernel's figure at exit (rusage ru_maxrss) also counts the address
// space the process was started from: Go starts a child with vfork, and
// exec records the parent's peak (VmHWM) as the child's starting maximum,
// so every child would show the bench's own peak (the images it made).
// runPeak therefore first resets the bench's peak to its current size
// (writing 5 to /proc/self/clear_refs): ru_maxrss above that floor is the
// child's own. When the reset fails, or the child stays at or below the
// floor, it uses the child's VmHWM sampled every 20 ms instead (a peak in
// the last 20 ms of its life is missed).
func runPeak(cmd *exec.Cmd) (result, error) {
	r := result{Mkimage: -1, Daemon: -1}
	floor := resetPeak()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	pid := cmd.Process.Pid
	sampled := samplePeak(func() []int { return []int{pid} }, 20*time.Millisecond)
	err := cmd.Wait()
	r.Wall = time.Since(start)
	r.PeakRSS = sampled()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && floor >= 0 && ru.Maxrss<<10 > floor {
		r.PeakRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return r, err
}

// resetPeak resets this process's peak resident memory (VmHWM) to its
// current resident memory and returns that, or -1 when it cannot.
func resetPeak() int64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return -1
	}
	return vmHWM(os.Getpid())
}

// tail returns the last n lines of a file.
func tail(name string, n int) string {
	dt, _ := os.ReadFile(name)
	lines := strings.Split(strings.TrimRight(string(dt), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// watchMkimage samples, every interval, the peak resident memory (VmHWM)
// of each `lkbuild mkimage` process below the process root (the bench's
// buildkitd: BuildKit runs the helper through runc, so it is a descendant)
// until the returned function is called, which returns the highest value
// seen in bytes, or -1 when no such process was seen.
func watchMkimage(root int, interval time.Duration) func() int64 {
	return samplePeak(func() []int {
		var out []int
		for _, pid := range descendants(root) {
			if isMkimage(pid) {
				out = append(out, pid)
			}
		}
		return out
	}, interval)
}

// samplePeak samples, every interval, the VmHWM of the processes pids
// lists until the returned function is called, which returns the highest
// value seen in bytes (-1 if none). VmHWM only grows, so a sample taken
// after the peak sees it; the last interval of a process's life is missed.
func samplePeak(pids func() []int, interval time.Duration) func() int64 {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	peak := int64(-1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			for _, pid := range pids() {
				peak = max(peak, vmHWM(pid))
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		wg.Wait()
		return peak
	}
}

// descendants lists the processes below pid, from /proc/<pid>/task/*/children.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 10000 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, t := range tasks {
			dt, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(dt)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// isMkimage reports whether pid runs `<something>/lkbuild mkimage ...`.
func isMkimage(pid int) bool {
	dt, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(dt), "\x00")
	return len(args) > 1 && filepath.Base(args[0]) == "lkbuild" && args[1] == "mkimage"
}

// vmHWM returns the process's peak resident set size in bytes (-1 if
// unknown).
func vmHWM(pid int) int64 {
	dt, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(dt), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}
