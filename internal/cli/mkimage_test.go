package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/mkimage"
)

// childEnv makes the test binary run lkbuild's Main with its arguments
// instead of the tests: the signal tests need a process of their own to
// signal.
const childEnv = "LKBUILD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		stopGrace = time.Second
		// test-wait stops when its context is cancelled; test-stuck never
		// returns. Both first leave a file in the output directory.
		mkimage.Formats["test-wait"] = func(ctx context.Context, o mkimage.Options) error {
			os.WriteFile(filepath.Join(o.Output, "half"), []byte("x"), 0o644)
			<-ctx.Done()
			return ctx.Err()
		}
		mkimage.Formats["test-stuck"] = func(ctx context.Context, o mkimage.Options) error {
			os.WriteFile(filepath.Join(o.Output, "half"), []byte("x"), 0o644)
			select {}
		}
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type child struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
	pid    int // the lkbuild process (inside the PID namespace, if any)
}

// startMkimage runs `lkbuild mkimage` in a child process, as PID 1 of a
// new PID namespace when pid1 is set (as in a build container).
func startMkimage(t *testing.T, pid1 bool, args ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{done: make(chan error, 1)}
	args = append([]string{exe, "mkimage"}, args...)
	if pid1 {
		args = append([]string{"unshare", "--pid", "--fork", "--kill-child"}, args...)
	}
	c.cmd = exec.Command(args[0], args[1:]...)
	c.cmd.Env = append(os.Environ(), childEnv+"=1")
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		// Only the process started here is killed; unshare --kill-child
		// takes the one in the namespace with it.
		c.cmd.Process.Kill()
		<-c.done
	})
	c.pid = c.cmd.Process.Pid
	if pid1 {
		// unshare's child is lkbuild; wait for it to exist.
		for i := 0; i < 100 && c.pid == c.cmd.Process.Pid; i++ {
			select {
			case err := <-c.done:
				c.done <- err
				t.Skipf("unshare cannot make a PID namespace here: %v: %s", err, c.stderr.String())
			default:
			}
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/task/" + strconv.Itoa(c.cmd.Process.Pid) + "/children")
			if f := strings.Fields(string(b)); len(f) > 0 {
				c.pid, _ = strconv.Atoi(f[0])
			}
			time.Sleep(20 * time.Millisecond)
		}
		if c.pid == c.cmd.Process.Pid {
			t.Fatal("no process inside the PID namespace")
		}
	}
	return c
}

// wait waits up to d for the child to exit and returns its exit code.
func (c *child) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		t.Fatalf("mkimage still running %s later; stderr:\n%s", d, c.stderr.String())
		return -1
	}
}

func waitForFile(t *testing.T, p string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(p); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", p)
}

// TestMkimageFIFOBootFile: a FIFO at boot/cmdline made mkimage block for
// ever in open(2), and SIGTERM did not end it. Now it fails at once,
// naming the file.
func TestMkimageFIFOBootFile(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(in, "boot"), 0o755)
	os.WriteFile(filepath.Join(in, "boot/kernel"), []byte("KERNEL"), 0o644)
	if err := syscall.Mkfifo(filepath.Join(in, "boot/cmdline"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startMkimage(t, false, "--format", "kernel+initrd", "--input", in, "--output", out)
	select {
	case err := <-c.done:
		c.done <- err
	case <-time.After(2 * time.Second):
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	if code := c.wait(t, 5*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(c.stderr.String(), "/boot/cmdline in the root filesystem: a FIFO") {
		t.Errorf("stderr does not name the FIFO:\n%s", c.stderr.String())
	}
}

// TestMkimageSIGTERM: SIGTERM stops a running mkimage promptly, removes
// what it had written, and exits 1 saying so; also as PID 1 of a PID
// namespace (how it runs in a build container), and also when the writer
// does not stop by itself.
func TestMkimageSIGTERM(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format string
		pid1   bool
		want   string
		clean  bool
	}{
		{"cancelled", "test-wait", false, "stopped by a signal: test-wait: context canceled", true},
		{"stuck writer", "test-stuck", false, "test-stuck still running after 1s", false},
		{"as PID 1", "test-wait", true, "stopped by a signal", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pid1 {
				if os.Geteuid() != 0 {
					t.Skip("a PID namespace needs root")
				}
				if _, err := exec.LookPath("unshare"); err != nil {
					t.Skip("unshare not installed")
				}
			}
			in, out := t.TempDir(), t.TempDir()
			c := startMkimage(t, tc.pid1, "--format", tc.format, "--input", in, "--output", out)
			waitForFile(t, filepath.Join(out, "half"))
			start := time.Now()
			if err := syscall.Kill(c.pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := c.wait(t, 5*time.Second); code != 1 {
				t.Errorf("exit code %d, want 1; stderr:\n%s", code, c.stderr.String())
			}
			t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
			if !strings.Contains(c.stderr.String(), tc.want) {
				t.Errorf("stderr %q, want it to say %q", c.stderr.String(), tc.want)
			}
			if ents, _ := os.ReadDir(out); tc.clean && len(ents) != 0 {
				t.Errorf("output holds %d entries after the stop, want none", len(ents))
			}
		})
	}
}
