package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// buildkitd is a BuildKit daemon of the bench's own, with its state in a
// fresh directory: a cold build starts from nothing, and the shared
// daemon's cache is never used, pruned or restarted.
type buildkitd struct {
	dir  string // state, config, socket and log
	addr string // unix://<dir>/buildkitd.sock
	cmd  *exec.Cmd
	done chan error
}

// daemonConfig is the environment's buildkitd configuration (base, the
// text of hack/buildkitd.toml) plus a plain-HTTP registry entry for each
// of extraRegistries (the latency proxy).
func daemonConfig(base string, extraRegistries ...string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, r := range extraRegistries {
		fmt.Fprintf(&b, "\n[registry.%q]\n  http = true\n  insecure = true\n", r)
	}
	return b.String()
}

// startBuildkitd starts bin with config in a new directory below parent
// and waits until it lists its workers.
func startBuildkitd(ctx context.Context, bin, config, parent string) (*buildkitd, error) {
	dir, err := os.MkdirTemp(parent, "buildkitd-")
	if err != nil {
		return nil, err
	}
	d := &buildkitd{dir: dir, addr: "unix://" + filepath.Join(dir, "buildkitd.sock"), done: make(chan error, 1)}
	cfg := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "buildkitd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(bin, "--config", cfg, "--root", filepath.Join(dir, "root"), "--addr", d.addr)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C of the bench reaches it through
	// stop, after the builds, not in the middle of cleaning up.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := d.ping(ctx)
		if err == nil {
			return d, nil
		}
		select {
		case werr := <-d.done:
			d.done <- werr
			d.stop()
			return nil, fmt.Errorf("buildkitd exited (%v): %s", werr, d.logTail())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			tail := d.logTail()
			d.stop()
			return nil, fmt.Errorf("buildkitd did not come up in 60s (%v): %s", err, tail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *buildkitd) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.New(ctx, d.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err == nil && len(ws) == 0 {
		err = errors.New("no workers")
	}
	return err
}

// pid is the daemon's process id.
func (d *buildkitd) pid() int { return d.cmd.Process.Pid }

// logTail returns the last lines of the daemon's log.
func (d *buildkitd) logTail() string {
	dt, _ := os.ReadFile(filepath.Join(d.dir, "buildkitd.log"))
	lines := strings.Split(strings.TrimSpace(string(dt)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}

// stop ends the daemon (SIGTERM, then SIGKILL after 30 s), unmounts what
// it left mounted below its directory and removes the directory.
func (d *buildkitd) stop() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	unmountBelow(d.dir)
	if err := os.RemoveAll(d.dir); err != nil {
		fmt.Fprintf(os.Stderr, "bench: removing buildkitd state: %v\n", err)
	}
}

// unmountBelow unmounts every mount point below dir, deepest first.
func unmountBelow(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mnts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && strings.HasPrefix(fs[4], dir+"/") {
			mnts = append(mnts, fs[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mnts)))
	for _, m := range mnts {
		if err := syscall.Unmount(m, 0); err != nil {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
}
