package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// reaper is PID 1's child bookkeeping: it reaps every child (including
// orphans re-parented to init) and hands the wait status of the children it
// started to whoever waits for them. All children are started through it so
// no other code calls wait.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan syscall.WaitStatus
	sigchld chan os.Signal
}

func newReaper() *reaper {
	r := &reaper{waiting: map[int]chan syscall.WaitStatus{}, sigchld: make(chan os.Signal, 1)}
	signal.Notify(r.sigchld, syscall.SIGCHLD)
	return r
}

func (r *reaper) loop() {
	r.reapAll()
	for range r.sigchld {
		r.reapAll()
	}
}

func (r *reaper) reapAll() {
	for {
		r.mu.Lock()
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			r.mu.Unlock()
			continue
		}
		if pid <= 0 || err != nil {
			r.mu.Unlock()
			return
		}
		if ch, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			ch <- ws
		}
		r.mu.Unlock()
	}
}

type startOpts struct {
	stdin *os.File
	attr  *syscall.SysProcAttr
}

// start runs argv with stdout/stderr on init's own (the console) and returns
// a channel that gets the wait status when it exits.
func (r *reaper) start(argv []string, o *startOpts) (int, <-chan syscall.WaitStatus, error) {
	if o == nil {
		o = &startOpts{}
	}
	stdin := o.stdin
	if stdin == nil {
		devnull, err := os.Open("/dev/null")
		if err == nil {
			defer devnull.Close()
			stdin = devnull
		}
	}
	stdout, stderr := os.Stdout.Fd(), os.Stderr.Fd()
	files := []uintptr{stdout, stdout, stderr}
	if stdin != nil {
		files[0] = stdin.Fd()
		if o.stdin != nil {
			files[1], files[2] = stdin.Fd(), stdin.Fd()
		}
	}
	attr := o.attr
	if attr == nil {
		attr = &syscall.SysProcAttr{Setsid: true}
	}
	ch := make(chan syscall.WaitStatus, 1)
	// Hold the lock across fork so the reaper cannot reap the child before
	// it is registered.
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: files,
		Sys:   attr,
	})
	if err != nil {
		return 0, nil, err
	}
	r.waiting[pid] = ch
	return pid, ch, nil
}

// run starts argv and waits for it.
func (r *reaper) run(argv []string) (syscall.WaitStatus, error) {
	_, done, err := r.start(argv, nil)
	if err != nil {
		return 0, err
	}
	return <-done, nil
}
