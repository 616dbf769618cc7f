// Package boottest boots lkbuild's artifacts in qemu (software emulation,
// TCG) through `lkbuild run` (cli.Run, internal/qemu) and watches the
// serial console for the markers the stand-in init and the example
// containers print.
package boottest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/qemu"
)

// Console is the serial output of a booted machine.
type Console struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
	done  chan struct{}
	read  chan struct{} // closed when the output has been read to its end
	err   error
	stop  func()
}

// Run boots o.Path as `lkbuild run` does (cli.Run, with TCG unless
// o.Accel says otherwise, and stdin from /dev/null) and returns its
// console: the serial output and qemu's and lkbuild's messages. The
// machine lives until ctx ends, the guest powers off or Close.
func Run(ctx context.Context, o cli.RunOptions, log io.Writer) (*Console, error) {
	if o.Accel == "" {
		o.Accel = "tcg" // KVM was seen to hang on the test machines
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r, w := io.Pipe()
	o.Stdin, o.Stdout, o.Stderr = null, w, w
	c := newConsole(r, log, cancel)
	go func() {
		err := cli.Run(ctx, o)
		null.Close()
		w.CloseWithError(err)
		c.finish(err)
	}()
	return c, nil
}

// Boot boots a with c through qemu.Command, the code under `lkbuild run`,
// for artifacts that need a change from what qemu.Detect found (an ISO
// attached as a hard disk). c.Accel defaults to tcg; c.Scratch must be set.
func Boot(ctx context.Context, a qemu.Artifact, c qemu.Config, log io.Writer) (*Console, error) {
	if c.Accel == "" {
		c.Accel = "tcg"
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd, err := qemu.Command(ctx, a, c)
	if err != nil {
		cancel()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c2 := newConsole(out, log, cancel)
	go func() {
		<-c2.read
		c2.finish(cmd.Wait())
	}()
	return c2, nil
}

// newConsole reads the console from r; stop ends the machine.
func newConsole(r io.Reader, log io.Writer, stop func()) *Console {
	c := &Console{cond: make(chan struct{}), done: make(chan struct{}), read: make(chan struct{}), stop: stop}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if log != nil {
				fmt.Fprintln(log, line)
			}
			c.mu.Lock()
			c.lines = append(c.lines, line)
			close(c.cond)
			c.cond = make(chan struct{})
			c.mu.Unlock()
		}
		close(c.read)
	}()
	return c
}

// finish records how the machine ended, once its output is read.
func (c *Console) finish(err error) {
	<-c.read
	c.err = err
	close(c.done)
}

// Stopped waits until the machine has stopped by itself and returns how
// (nil when the guest powered off); it fails when timeout passes first.
func (c *Console) Stopped(timeout time.Duration) error {
	select {
	case <-c.done:
		return c.err
	case <-time.After(timeout):
		return fmt.Errorf("the machine still runs after %s", timeout)
	}
}

// WaitFor waits until every marker has appeared on the console, in any
// order. It fails when the machine stops first or timeout passes.
func (c *Console) WaitFor(timeout time.Duration, markers ...string) error {
	return c.wait(timeout, "", func() []string { return c.missing(markers) })
}

// WaitForInOrder waits until the markers have appeared on the console in
// the given order, each on a line after the previous marker's line (a line
// can hold only one marker). It fails when the machine stops first or
// timeout passes.
func (c *Console) WaitForInOrder(timeout time.Duration, markers ...string) error {
	return c.wait(timeout, ", in order,", func() []string { return c.missingInOrder(markers) })
}

// wait polls missing (called with c.mu held) at every console update until
// it returns nothing, the machine stops or timeout passes.
func (c *Console) wait(timeout time.Duration, how string, missing func() []string) error {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		m := missing()
		cond := c.cond
		c.mu.Unlock()
		if len(m) == 0 {
			return nil
		}
		select {
		case <-cond:
		case <-c.done:
			c.mu.Lock()
			m = missing()
			c.mu.Unlock()
			if len(m) == 0 {
				return nil
			}
			return fmt.Errorf("machine stopped (%v) before printing%s %q", c.err, how, m)
		case <-deadline:
			return fmt.Errorf("no %q%s on the console after %s", m, how, timeout)
		}
	}
}

// missingInOrder returns the markers from the first one not found after its
// predecessor's line.
func (c *Console) missingInOrder(markers []string) []string {
	line := 0
	for i, m := range markers {
		for line < len(c.lines) && !strings.Contains(c.lines[line], m) {
			line++
		}
		if line == len(c.lines) {
			return markers[i:]
		}
		line++
	}
	return nil
}

func (c *Console) missing(markers []string) []string {
	var out []string
	for _, m := range markers {
		found := false
		for _, l := range c.lines {
			if strings.Contains(l, m) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, m)
		}
	}
	return out
}

// Close kills the machine and waits until it has exited, so no qemu
// outlives the test that started it (cancelling the context alone only
// starts the kill: a test binary that exits right after leaves qemu
// running). Tests call it from t.Cleanup.
func (c *Console) Close() {
	c.stop()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	}
}

// Output returns everything printed so far.
func (c *Console) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}
