package vdisk

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	qcowClusterBits = 16
	qcowClusterSize = 1 << qcowClusterBits
	qcowL2Entries   = qcowClusterSize / 8 // 8-byte entries per L2 table
	qcowRefOrder    = 4                   // 16-bit refcounts
	qcowRefPerBlock = qcowClusterSize * 8 / (1 << qcowRefOrder)
	qcowHeaderLen   = 104 // version 3 header without optional fields
	qcowCopied      = 1 << 63
	qcowMaxL1Bytes  = 32 << 20 // what qemu accepts
)

// qcowLayout places every cluster of the image. Offsets are in clusters;
// the file is header, L1 table, refcount table, refcount blocks, L2 tables,
// data clusters, in that order, each cluster referenced exactly once.
type qcowLayout struct {
	virtSize   int64 // bytes, the raw size rounded up to a sector
	clusters   int64 // guest clusters
	l1Entries  int64
	l1Clusters int64
	rtClusters int64 // refcount table
	refBlocks  int64
	l2Tables   int64
	data       int64 // allocated (non-zero) guest clusters
	total      int64 // clusters in the file
}

func (l *qcowLayout) l1Off() int64   { return 1 }
func (l *qcowLayout) rtOff() int64   { return l.l1Off() + l.l1Clusters }
func (l *qcowLayout) rbOff() int64   { return l.rtOff() + l.rtClusters }
func (l *qcowLayout) l2Off() int64   { return l.rbOff() + l.refBlocks }
func (l *qcowLayout) dataOff() int64 { return l.l2Off() + l.l2Tables }

// WriteQCOW2 writes the raw image of size bytes as a qcow2 version 3 image
// with 64 KiB clusters, 16-bit refcounts, no compression and no backing file.
// Clusters that are entirely zero are left unallocated, so they read as zero
// and take no space. The virtual size is size rounded up to a multiple of 512
// bytes. raw is read twice: once to find the non-zero clusters (the tables
// must precede the data), then to copy them; it must not change in between.
func WriteQCOW2(w io.Writer, raw io.ReaderAt, size int64) error {
	if err := checkSize(size); err != nil {
		return fmt.Errorf("qcow2: %w", err)
	}
	alloc, nData, err := scanNonZero(raw, size, qcowClusterSize)
	if err != nil {
		return fmt.Errorf("qcow2: %w", err)
	}
	l := qcowLayout{virtSize: roundUp(size, sectorSize), data: nData}
	l.clusters = divUp(l.virtSize, qcowClusterSize)
	l.l1Entries = divUp(l.clusters, qcowL2Entries)
	if l.l1Entries*8 > qcowMaxL1Bytes {
		return fmt.Errorf("qcow2: raw image size %d is too large", size)
	}
	l.l1Clusters = divUp(l.l1Entries*8, qcowClusterSize)
	for t := int64(0); t < l.l1Entries; t++ {
		if l2Used(alloc, t) {
			l.l2Tables++
		}
	}
	// The refcount blocks must count themselves and the refcount table:
	// grow both until they cover the whole file.
	for {
		l.total = 1 + l.l1Clusters + l.rtClusters + l.refBlocks + l.l2Tables + l.data
		rb := divUp(l.total, qcowRefPerBlock)
		rt := divUp(rb*8, qcowClusterSize)
		if rb == l.refBlocks && rt == l.rtClusters {
			break
		}
		l.refBlocks, l.rtClusters = rb, rt
	}

	o := newOutput(w)
	cluster := make([]byte, qcowClusterSize)
	be := binary.BigEndian

	// Header.
	be.PutUint32(cluster[0:], 0x514649fb) // "QFI\xfb"
	be.PutUint32(cluster[4:], 3)
	be.PutUint32(cluster[20:], qcowClusterBits)
	be.PutUint64(cluster[24:], uint64(l.virtSize))
	be.PutUint32(cluster[36:], uint32(l.l1Entries))
	be.PutUint64(cluster[40:], uint64(l.l1Off()*qcowClusterSize))
	be.PutUint64(cluster[48:], uint64(l.rtOff()*qcowClusterSize))
	be.PutUint32(cluster[56:], uint32(l.rtClusters))
	be.PutUint32(cluster[96:], qcowRefOrder)
	be.PutUint32(cluster[100:], qcowHeaderLen)
	// The header extension area after it stays zero: the end marker.
	o.write(cluster)

	// L1 table: L2 tables are numbered in guest order.
	o.at(l.l1Off()*qcowClusterSize, "qcow2 L1 table")
	next := l.l2Off()
	for c := int64(0); c < l.l1Clusters; c++ {
		clear(cluster)
		for i := int64(0); i < qcowClusterSize/8; i++ {
			t := c*qcowClusterSize/8 + i
			if t >= l.l1Entries {
				break
			}
			if l2Used(alloc, t) {
				be.PutUint64(cluster[i*8:], uint64(next*qcowClusterSize)|qcowCopied)
				next++
			}
		}
		o.write(cluster)
	}

	// Refcount table.
	o.at(l.rtOff()*qcowClusterSize, "qcow2 refcount table")
	for c := int64(0); c < l.rtClusters; c++ {
		clear(cluster)
		for i := int64(0); i < qcowClusterSize/8; i++ {
			b := c*qcowClusterSize/8 + i
			if b >= l.refBlocks {
				break
			}
			be.PutUint64(cluster[i*8:], uint64((l.rbOff()+b)*qcowClusterSize))
		}
		o.write(cluster)
	}

	// Refcount blocks: every cluster of the file is used exactly once.
	o.at(l.rbOff()*qcowClusterSize, "qcow2 refcount blocks")
	for b := int64(0); b < l.refBlocks; b++ {
		clear(cluster)
		for i := int64(0); i < qcowRefPerBlock; i++ {
			if b*qcowRefPerBlock+i >= l.total {
				break
			}
			be.PutUint16(cluster[i*2:], 1)
		}
		o.write(cluster)
	}

	// L2 tables: data clusters are numbered in guest order.
	o.at(l.l2Off()*qcowClusterSize, "qcow2 L2 tables")
	next = l.dataOff()
	for t := int64(0); t < l.l1Entries; t++ {
		if !l2Used(alloc, t) {
			continue
		}
		clear(cluster)
		for i := int64(0); i < qcowL2Entries; i++ {
			g := t*qcowL2Entries + i
			if g >= l.clusters {
				break
			}
			if alloc.has(g) {
				be.PutUint64(cluster[i*8:], uint64(next*qcowClusterSize)|qcowCopied)
				next++
			}
		}
		o.write(cluster)
	}

	// Data clusters.
	o.at(l.dataOff()*qcowClusterSize, "qcow2 data")
	for g := int64(0); g < l.clusters && o.err == nil; g++ {
		if !alloc.has(g) {
			continue
		}
		if err := readChunk(raw, size, cluster, g*qcowClusterSize); err != nil {
			return fmt.Errorf("qcow2: %w", err)
		}
		o.write(cluster)
	}
	o.at(l.total*qcowClusterSize, "qcow2 end")
	if err := o.flush(); err != nil {
		return fmt.Errorf("qcow2: %w", err)
	}
	return nil
}

// l2Used reports whether L2 table t maps any non-zero cluster.
func l2Used(alloc bitset, t int64) bool {
	// An L2 table covers 8192 clusters: 128 whole words of the bitset.
	const words = qcowL2Entries / 64
	end := min((t+1)*words, int64(len(alloc)))
	for _, w := range alloc[t*words : end] {
		if w != 0 {
			return true
		}
	}
	return false
}
