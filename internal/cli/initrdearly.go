package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/frontend"
	"golang.org/x/sys/unix"
)

// preassembly is an initrd written while the build still runs, from the
// manifest the frontend passes with the parts (ReceiveParts): the parts
// received are written into it as they arrive, and the cache's are copied
// in meanwhile, then checked (read back and hashed, as writeParts does).
// The build then ends and exports while the copies go on; assembleOne
// takes the file for the exported manifest of the same bytes, instead of
// writing the initrd after the build.
type preassembly struct {
	path   string
	out    *os.File
	offs   map[string][]int64 // the offsets of each part received
	parts  []formats.InitrdPart
	cancel context.CancelFunc
	recv   chan error // what receiving the parts ended with
	done   chan struct{}
	err    error // once done is closed
}

// cachedAt is a part of the preassembly that comes from the cache.
type cachedAt struct {
	p   formats.InitrdPart
	off int64
}

// preassemble starts writing the initrd of manifest m (its bytes) into
// c.recv: the parts recv are to be received (writerFor), the others are
// copied from the cache. It returns nil when an initrd of the same
// manifest is already being written (several platforms may have the
// same).
func (c *initrdCache) preassemble(manifest []byte, m formats.InitrdParts, recv []frontend.PartReader) (*preassembly, error) {
	key := sha256Hex(manifest)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[key] != nil {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	pa := &preassembly{
		path:   filepath.Join(c.recv, "initrd-"+key),
		offs:   map[string][]int64{},
		parts:  m.Parts,
		cancel: cancel,
		recv:   make(chan error, 1),
		done:   make(chan struct{}),
	}
	out, err := os.OpenFile(pa.path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("writing the initrd: %w", err)
	}
	pa.out = out
	receiving := map[string]bool{}
	for _, p := range recv {
		receiving[p.Part.SHA256] = true
	}
	var cached []cachedAt
	var off int64
	for _, p := range m.Parts {
		if receiving[p.SHA256] {
			pa.offs[p.SHA256] = append(pa.offs[p.SHA256], off)
		} else {
			cached = append(cached, cachedAt{p, off})
		}
		off += p.Size
	}
	c.markUsed(cached)
	if len(recv) == 0 {
		pa.recv <- nil
	}
	if c.pending == nil {
		c.pending = map[string]*preassembly{}
	}
	c.pending[key] = pa
	go func() {
		pa.err = c.fill(ctx, pa, cached, off)
		pa.out.Close()
		close(pa.done)
	}()
	return pa, nil
}

// writerFor returns the function receivePart writes each chunk of the
// part named sha256 with, into every place of the initrd that has the
// part (nil for a nil preassembly).
func (pa *preassembly) writerFor(sha256 string) func(b []byte, off int64) error {
	if pa == nil {
		return nil
	}
	offs := pa.offs[sha256]
	return func(b []byte, off int64) error {
		for _, o := range offs {
			if _, err := pa.out.WriteAt(b, o+off); err != nil {
				return fmt.Errorf("writing the initrd: %w", err)
			}
		}
		return nil
	}
}

// received tells pa that receiving its parts ended, with err.
func (pa *preassembly) received(err error) {
	if pa != nil {
		pa.recv <- err
	}
}

// fill copies the cached parts into pa's initrd, one after the other, and
// checks each one read back, hashWorkers at a time, while the next ones
// are copied; then it waits for the parts received and checks the size
// of the whole, size. The error is the parts' received first, then the
// first cached part's in order.
func (c *initrdCache) fill(ctx context.Context, pa *preassembly, cached []cachedAt, size int64) error {
	errs := make([]error, len(cached))
	sem := make(chan struct{}, hashWorkers)
	var wg sync.WaitGroup
	for i, ca := range cached {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			break
		}
		src, fromCache, n, err := c.copyCachedAt(pa.out, ca)
		if err != nil {
			errs[i] = err
			if errors.Is(err, errPartGone) {
				// The others are still checked (writeParts).
				continue
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.checkPart(pa.out, ca.off, n, src, fromCache, ca.p)
		}()
	}
	wg.Wait()
	var rerr error
	select {
	case rerr = <-pa.recv:
	case <-ctx.Done():
		return ctx.Err()
	}
	if rerr != nil {
		return rerr
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fi, err := pa.out.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("the initrd written has %d bytes, its manifest %d", fi.Size(), size)
	}
	return nil
}

// copyCachedAt copies the part ca.p, as this build received it already
// (notReceived) or else from the cache (findPart), to out at ca.off
// (copyAt) and returns its path, whether that is the cache's, and how
// many bytes of it there are.
func (c *initrdCache) copyCachedAt(out *os.File, ca cachedAt) (string, bool, int64, error) {
	f, src, fromCache, err := c.findPart(ca.p, c.recv)
	if err != nil {
		return "", false, 0, err
	}
	defer f.Close()
	n, err := copyAt(out, ca.off, f, ca.p)
	return src, fromCache, n, err
}

// takePreassembly returns the initrd being written for the manifest of
// these bytes, once, or nil.
func (c *initrdCache) takePreassembly(manifest []byte) *preassembly {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := sha256Hex(manifest)
	pa := c.pending[key]
	delete(c.pending, key)
	return pa
}

// dropPreassemblies stops the initrds being written, waits for them and
// removes them, when the build ends (one asked again settles them:
// settlePreassemblies).
func (c *initrdCache) dropPreassemblies() {
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, pa := range pending {
		pa.cancel()
		<-pa.done
		os.Remove(pa.path)
	}
}

// settlePreassemblies waits for the initrds being written to end, without
// stopping them, and removes them: before the build is asked again
// (errPartGone), so that every cached part they copy is checked, and
// removed when damaged, and the second try is sent all such parts at once.
// The first try's solve has ended, so their parts received are all in.
func (c *initrdCache) settlePreassemblies() {
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, pa := range pending {
		<-pa.done
		os.Remove(pa.path)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// markUsed gives the cached parts the time of now as soon as the manifest
// names them: another build's pruning, least recently used first, then
// leaves them (keep gives them the time again once the initrd is
// written). The entries are touched without following a symlink.
func (c *initrdCache) markUsed(cached []cachedAt) {
	now := unix.NsecToTimespec(time.Now().UnixNano())
	for _, ca := range cached {
		if formats.ValidSHA256(ca.p.SHA256) {
			unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(c.dir, ca.p.SHA256), []unix.Timespec{now, now}, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
}
