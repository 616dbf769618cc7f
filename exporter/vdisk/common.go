package vdisk

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

const (
	sectorSize = 512
	// scanChunk is how much of the raw image is read at once while looking
	// for non-zero regions; a multiple of every allocation unit used here.
	scanChunk = 2 << 20
)

// zeros is compared against to find all-zero regions, and written as padding.
var zeros [64 << 10]byte

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// checkSize rejects raw image sizes the converters cannot represent.
func checkSize(size int64) error {
	if size <= 0 {
		return fmt.Errorf("raw image size %d: must be positive", size)
	}
	return nil
}

// roundUp rounds n up to a multiple of m.
func roundUp(n, m int64) int64 {
	return (n + m - 1) / m * m
}

// divUp divides n by m, rounding up.
func divUp(n, m int64) int64 {
	return (n + m - 1) / m
}

// readChunk fills buf with the raw image's bytes at off; bytes at or after
// size read as zero, so the last, partial unit comes back zero-padded.
func readChunk(r io.ReaderAt, size int64, buf []byte, off int64) error {
	n := int64(len(buf))
	if rem := size - off; rem < n {
		n = max(rem, 0)
	}
	if n > 0 {
		m, err := r.ReadAt(buf[:n], off)
		if int64(m) < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading raw image at offset %d: %w", off+int64(m), err)
		}
	}
	clear(buf[n:])
	return nil
}

// bitset is a fixed-size set of unit indexes.
type bitset []uint64

func newBitset(n int64) bitset { return make(bitset, divUp(n, 64)) }

func (b bitset) set(i int64) { b[i/64] |= 1 << (i % 64) }

// has reports whether i is in the set; indexes past its size are not.
func (b bitset) has(i int64) bool {
	return i/64 < int64(len(b)) && b[i/64]&(1<<(i%64)) != 0
}

// scanNonZero reads the whole raw image once and returns the set of
// unit-sized regions (unit divides scanChunk) holding a non-zero byte, and
// how many there are. Memory is one bit per unit plus one read buffer.
func scanNonZero(r io.ReaderAt, size, unit int64) (bitset, int64, error) {
	units := divUp(size, unit)
	set := newBitset(units)
	var count int64
	buf := make([]byte, min(scanChunk, roundUp(size, unit)))
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := readChunk(r, size, buf, off); err != nil {
			return nil, 0, err
		}
		for i := int64(0); i < int64(len(buf)) && off+i < size; i += unit {
			if !isZero(buf[i : i+unit]) {
				set.set((off + i) / unit)
				count++
			}
		}
	}
	return set, count, nil
}

// output is a buffered writer that tracks the output offset and keeps the
// first error, so layout code can write field after field and check once.
type output struct {
	bw  *bufio.Writer
	off int64
	err error
}

func newOutput(w io.Writer) *output {
	return &output{bw: bufio.NewWriterSize(w, 256<<10)}
}

func (o *output) write(p []byte) {
	if o.err != nil {
		return
	}
	n, err := o.bw.Write(p)
	o.off += int64(n)
	if err != nil {
		o.err = fmt.Errorf("writing output at offset %d: %w", o.off, err)
	}
}

// zeroFill writes n zero bytes.
func (o *output) zeroFill(n int64) {
	for n > 0 && o.err == nil {
		k := min(n, int64(len(zeros)))
		o.write(zeros[:k])
		n -= k
	}
}

// pad writes zeros up to the next multiple of align.
func (o *output) pad(align int64) {
	o.zeroFill(roundUp(o.off, align) - o.off)
}

// at checks that the output has reached the offset the layout planned; a
// mismatch is a bug in this package, reported rather than producing a
// corrupt image.
func (o *output) at(off int64, what string) {
	if o.err == nil && o.off != off {
		o.err = fmt.Errorf("internal error: %s at offset %d, planned %d", what, o.off, off)
	}
}

func (o *output) flush() error {
	if o.err != nil {
		return o.err
	}
	if err := o.bw.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// deriveID derives a 16-byte identifier from the caller's seed, distinct per
// purpose, shaped as an RFC 9562 version 8 (custom) UUID: SHA-256 of the
// purpose and the seed with the version and variant bits set.
func deriveID(seed []byte, purpose string) [16]byte {
	h := sha256.New()
	h.Write([]byte("lkbuild vdisk\x00" + purpose + "\x00"))
	h.Write(seed)
	var id [16]byte
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x80
	id[8] = id[8]&0x3f | 0x80
	return id
}
