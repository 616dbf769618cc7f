package vdisk

import (
	"encoding/binary"
	"fmt"
)

// parseQCOW2 reads a qcow2 image as written by WriteQCOW2 and checks its
// structure the way `qemu-img check` does: every cluster in the file is
// referenced exactly as often as its refcount says, and the COPIED flags
// agree with refcount 1.
func parseQCOW2(b []byte) (*vimage, error) {
	be := binary.BigEndian
	if len(b) < qcowClusterSize || len(b)%qcowClusterSize != 0 {
		return nil, fmt.Errorf("file size %d is not a whole number of clusters", len(b))
	}
	u32 := func(off int) uint32 { return be.Uint32(b[off:]) }
	u64 := func(off int) uint64 { return be.Uint64(b[off:]) }
	switch {
	case u32(0) != 0x514649fb:
		return nil, fmt.Errorf("bad magic")
	case u32(4) != 3:
		return nil, fmt.Errorf("version %d", u32(4))
	case u64(8) != 0 || u32(16) != 0:
		return nil, fmt.Errorf("backing file set")
	case u32(20) != qcowClusterBits:
		return nil, fmt.Errorf("cluster bits %d", u32(20))
	case u32(32) != 0:
		return nil, fmt.Errorf("encrypted")
	case u32(60) != 0 || u64(64) != 0:
		return nil, fmt.Errorf("snapshots")
	case u64(72) != 0 || u64(80) != 0 || u64(88) != 0:
		return nil, fmt.Errorf("feature bits set")
	case u32(96) != qcowRefOrder:
		return nil, fmt.Errorf("refcount order %d", u32(96))
	case u32(100) != qcowHeaderLen:
		return nil, fmt.Errorf("header length %d", u32(100))
	case u64(qcowHeaderLen) != 0:
		return nil, fmt.Errorf("header extensions present")
	}
	nClusters := int64(len(b) / qcowClusterSize)
	refs := make([]int, nClusters)
	ref := func(off uint64, n int64, what string) error {
		if off%qcowClusterSize != 0 || int64(off/qcowClusterSize)+n > nClusters {
			return fmt.Errorf("%s at %#x: unaligned or beyond the file", what, off)
		}
		for i := range n {
			refs[int64(off/qcowClusterSize)+i]++
		}
		return nil
	}
	ref(0, 1, "header")

	v := &vimage{size: int64(u64(24)), unit: qcowClusterSize, units: map[int64][]byte{}, sparse: true}
	l1Size := int64(u32(36))
	if l1Size < divUp(v.size, qcowClusterSize*qcowL2Entries) {
		return nil, fmt.Errorf("L1 table of %d entries too small", l1Size)
	}
	l1Off := u64(40)
	if err := ref(l1Off, divUp(l1Size*8, qcowClusterSize), "L1 table"); err != nil {
		return nil, err
	}
	rtOff, rtClusters := u64(48), int64(u32(56))
	if err := ref(rtOff, rtClusters, "refcount table"); err != nil {
		return nil, err
	}
	var refBlocks []uint64
	for i := range rtClusters * qcowClusterSize / 8 {
		e := u64(int(rtOff) + int(i)*8)
		refBlocks = append(refBlocks, e)
		if e != 0 {
			if err := ref(e, 1, "refcount block"); err != nil {
				return nil, err
			}
		}
	}
	for i := range l1Size {
		e := u64(int(l1Off) + int(i)*8)
		if e == 0 {
			continue
		}
		if e&qcowCopied == 0 {
			return nil, fmt.Errorf("L1 entry %d lacks the COPIED flag", i)
		}
		l2 := e &^ qcowCopied
		if err := ref(l2, 1, "L2 table"); err != nil {
			return nil, err
		}
		for j := range int64(qcowL2Entries) {
			d := u64(int(l2) + int(j)*8)
			if d == 0 {
				continue
			}
			if d&qcowCopied == 0 || d&(1<<62|1) != 0 {
				return nil, fmt.Errorf("L2 entry %d/%d has flags %#x", i, j, d)
			}
			off := d &^ qcowCopied
			if err := ref(off, 1, "data cluster"); err != nil {
				return nil, err
			}
			v.units[i*qcowL2Entries+j] = b[off : off+qcowClusterSize]
		}
	}
	for c := range nClusters {
		blk := refBlocks[c/qcowRefPerBlock]
		var rc int
		if blk != 0 {
			rc = int(be.Uint16(b[int(blk)+int(c%qcowRefPerBlock)*2:]))
		}
		if rc != refs[c] {
			return nil, fmt.Errorf("cluster %d: refcount %d, referenced %d times", c, rc, refs[c])
		}
	}
	return v, nil
}
