package cpio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/lkbuild/lkbuild/exporter/fstree"
)

// Reader reads a newc archive. It exists so tests and tools can check what
// the writers produced without external programs.
type Reader struct {
	r      *bufio.Reader
	remain int64
	pad    int64
	concat bool
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r)} }

// NewConcatReader returns a Reader of archives that follow one another,
// with NUL padding between them, as the kernel reads an initramfs (a
// segmented initrd, once decompressed): Next returns io.EOF only after the
// last archive's trailer. An entry of a later archive may have the name
// of an earlier one; the kernel then replaces it.
func NewConcatReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReader(r), concat: true}
}

// Next advances to the next entry; it returns io.EOF after the trailer.
// A symlink's target is returned in Linkname.
func (r *Reader) Next() (*Header, error) {
	if _, err := io.CopyN(io.Discard, r.r, r.remain+r.pad); err != nil {
		return nil, err
	}
	r.remain, r.pad = 0, 0
	var raw [headerLen]byte
	if _, err := io.ReadFull(r.r, raw[:]); err != nil {
		return nil, err
	}
	if string(raw[:6]) != magic {
		return nil, errors.New("cpio: not a newc header")
	}
	f := make([]uint32, 13)
	for i := range f {
		v, err := strconv.ParseUint(string(raw[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("cpio: bad header field: %w", err)
		}
		f[i] = uint32(v)
	}
	h := &Header{Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], NLink: f[4], Mtime: int64(f[5]), Size: int64(f[6]),
		DevMajor: f[7], DevMinor: f[8], RDevMajor: f[9], RDevMinor: f[10]}
	name := make([]byte, f[11])
	if _, err := io.ReadFull(r.r, name); err != nil {
		return nil, err
	}
	h.Name = string(name[:len(name)-1])
	if _, err := io.CopyN(io.Discard, r.r, int64((4-(headerLen+len(name))%4)%4)); err != nil {
		return nil, err
	}
	if h.Name == trailerName {
		if r.concat {
			for {
				b, err := r.r.Peek(1)
				if err == io.EOF {
					return nil, io.EOF
				}
				if err != nil {
					return nil, err
				}
				if b[0] != 0 {
					return r.Next()
				}
				r.r.Discard(1)
			}
		}
		return nil, io.EOF
	}
	r.remain, r.pad = h.Size, (4-h.Size%4)%4
	if h.Mode&fstree.TypeMask == fstree.TypeLink {
		target := make([]byte, h.Size)
		if _, err := io.ReadFull(r.r, target); err != nil {
			return nil, err
		}
		h.Linkname = string(target)
		r.remain = 0
	}
	return h, nil
}

// Read reads the current entry's data.
func (r *Reader) Read(p []byte) (int, error) {
	if r.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.r.Read(p)
	r.remain -= int64(n)
	return n, err
}
