package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/frontend"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

const (
	// recvChunk is how much of a part one gateway read asks for: well
	// within BuildKit's message limit (16 MiB), small enough that the
	// reads in flight hold a few MiB.
	recvChunk = 2 << 20
	// recvAhead is how many reads of one part are in flight at once.
	recvAhead = 4
)

// ReceiveParts receives the parts the frontend sends (frontend.PartsSink),
// two at a time, as a step of the build's progress of its own, and
// starts writing the manifest's initrd (preassemble): the parts received
// go into it as they arrive, and its parts from the cache are copied in
// meanwhile and after it returns, while the build ends and exports.
func (c *initrdCache) ReceiveParts(ctx context.Context, manifest []byte, parts []frontend.PartReader) error {
	m, err := formats.ParseInitrdParts(manifest)
	if err != nil {
		return err
	}
	parts = c.notReceived(parts)
	pa, err := c.preassemble(manifest, m, parts)
	if err != nil {
		return err
	}
	if pa == nil {
		// Another platform's initrd is the same: its parts are being
		// received.
		return nil
	}
	if len(parts) == 0 {
		return nil
	}
	var size int64
	for _, p := range parts {
		size += p.Part.Size
	}
	start := time.Now()
	v := &client.Vertex{
		Digest:  digest.FromString(fmt.Sprintf("lkbuild receive initrd parts %d %p", start.UnixNano(), &parts)),
		Name:    fmt.Sprintf("[%s] receive the initrd's parts (%d of %d, %.1f MB)", formats.InitrdPartsTarget, len(parts), len(m.Parts), float64(size)/1e6),
		Started: &start,
	}
	c.show(v)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(2)
	for _, p := range parts {
		eg.Go(func() error {
			if err := c.receivePart(ectx, p.Part, p.Read, pa.writerFor(p.Part.SHA256)); err != nil {
				return fmt.Errorf("receiving the initrd's part %s: %w", p.Part.SHA256, err)
			}
			return nil
		})
	}
	err = eg.Wait()
	pa.received(err)
	done := *v
	end := time.Now()
	done.Completed = &end
	if err != nil {
		done.Error = err.Error()
	}
	c.show(&done)
	return err
}

// notReceived returns the parts this build has not received yet. A part
// may be passed with several manifests (two platforms' initrds that share
// it): once received for one it is in c.recv, checked, and the others'
// initrds copy it from there (copyCachedAt) instead of its being read
// again.
func (c *initrdCache) notReceived(parts []frontend.PartReader) []frontend.PartReader {
	var out []frontend.PartReader
	for _, p := range parts {
		if fi, err := os.Lstat(filepath.Join(c.recv, p.Part.SHA256)); err == nil && fi.Mode().IsRegular() && formats.ValidSHA256(p.Part.SHA256) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// show adds v to the build's progress (when the build shows it).
func (c *initrdCache) show(v *client.Vertex) {
	if c.status != nil {
		c.status(&client.SolveStatus{Vertexes: []*client.Vertex{v}})
	}
}

// receivePart writes one part to c.recv, under its SHA-256, where
// assembleOne finds it and from where keep moves it into the cache, and
// passes each chunk, with its offset in the part, to also (when not nil).
// The chunks are read recvAhead at a time and written and hashed in
// order; a part of another size or SHA-256 than the manifest says fails
// the build and leaves nothing in c.recv. The memory it holds does not
// depend on the size the manifest claims.
func (c *initrdCache) receivePart(ctx context.Context, p formats.InitrdPart, read func(ctx context.Context, off int64, n int) ([]byte, error), also func(b []byte, off int64) error) (err error) {
	if !formats.ValidSHA256(p.SHA256) || p.Size < 0 {
		return fmt.Errorf("not a part: %q, %d bytes", p.SHA256, p.Size)
	}
	f, err := os.CreateTemp(c.recv, ".part-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Chunk i is [i*recvChunk, +want); the last one asks for one byte
	// more, which a longer part returns.
	chunks := int64(1)
	if p.Size > 0 {
		chunks = (p.Size + recvChunk - 1) / recvChunk
	}
	type chunk struct {
		b   []byte
		err error
	}
	// Chunk i goes to slots[i%recvAhead]: it is read only once chunk
	// i-recvAhead was taken from there.
	slots := make([]chan chunk, recvAhead)
	for i := range slots {
		slots[i] = make(chan chunk, 1)
	}
	ahead := make(chan struct{}, recvAhead)
	go func() {
		for i := int64(0); i < chunks; i++ {
			select {
			case ahead <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				off := i * recvChunk
				n := min(recvChunk, p.Size-off)
				if i == chunks-1 {
					n++
				}
				b, err := read(ctx, off, int(n))
				slots[i%recvAhead] <- chunk{b, err}
			}()
		}
	}()
	h, x := sha256.New(), xxhash.New()
	var got int64
	for i := int64(0); i < chunks; i++ {
		var ch chunk
		select {
		case ch = <-slots[i%recvAhead]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-ahead
		if ch.err != nil {
			return ch.err
		}
		want := min(recvChunk, p.Size-i*recvChunk)
		if int64(len(ch.b)) != want {
			if i == chunks-1 && int64(len(ch.b)) > want {
				return fmt.Errorf("the part is longer than its %d bytes", p.Size)
			}
			return fmt.Errorf("the part has %d bytes of %d", got+int64(len(ch.b)), p.Size)
		}
		if _, err := f.Write(ch.b); err != nil {
			return err
		}
		if also != nil {
			if err := also(ch.b, got); err != nil {
				return err
			}
		}
		h.Write(ch.b)
		x.Write(ch.b)
		got += want
	}
	if s := hex.EncodeToString(h.Sum(nil)); s != p.SHA256 {
		return fmt.Errorf("the part's SHA-256 is %s", s)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(c.recv, p.SHA256)); err != nil {
		return err
	}
	c.noteSum(p.SHA256, x.Sum64())
	return nil
}
