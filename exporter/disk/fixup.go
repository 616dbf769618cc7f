package disk

import (
	"encoding/binary"
	"fmt"
	"io"
)

// fixFAT completes what go-diskfs leaves out of a FAT32 filesystem it
// created, so that dosfstools' fsck.fat finds nothing to fix:
//   - the volume serial (go-diskfs writes 0 in reproducible mode) is set,
//     in the boot sector and its backup;
//   - the FSInfo free-cluster count and next-free hint are filled in;
//   - ".." in a directory directly under the root points at cluster 0, as
//     the FAT specification asks (go-diskfs writes the root's cluster).
func fixFAT(f io.ReaderAt, off int64, serial []byte) error {
	w, ok := f.(io.WriterAt)
	if !ok {
		return fmt.Errorf("fixFAT: not writable")
	}
	bs := make([]byte, sector)
	if _, err := f.ReadAt(bs, off); err != nil {
		return err
	}
	le16 := func(b []byte) int64 { return int64(binary.LittleEndian.Uint16(b)) }
	le32 := func(b []byte) int64 { return int64(binary.LittleEndian.Uint32(b)) }
	bps, spc := le16(bs[0x0b:]), int64(bs[0x0d])
	reserved, nfats := le16(bs[0x0e:]), int64(bs[0x10])
	total, fatSectors := le32(bs[0x20:]), le32(bs[0x24:])
	root, fsinfo, backup := uint32(le32(bs[0x2c:])), le16(bs[0x30:]), le16(bs[0x32:])
	if bps != sector || spc == 0 || fatSectors == 0 {
		return fmt.Errorf("fixFAT: unexpected boot sector (bytes/sector %d, sectors/cluster %d)", bps, spc)
	}
	for _, s := range []int64{0, backup} {
		if _, err := w.WriteAt(serial, off+s*sector+0x43); err != nil {
			return err
		}
	}

	fat := make([]byte, fatSectors*sector)
	if _, err := f.ReadAt(fat, off+reserved*sector); err != nil {
		return err
	}
	next := func(c uint32) uint32 { return binary.LittleEndian.Uint32(fat[4*c:]) & 0x0fffffff }
	dataStart := off + (reserved+nfats*fatSectors)*sector
	clusters := (total - reserved - nfats*fatSectors) / spc
	clusterBytes := spc * sector
	clusterOff := func(c uint32) int64 { return dataStart + int64(c-2)*clusterBytes }

	free, firstFree := int64(0), int64(-1)
	for c := int64(2); c < clusters+2 && 4*c+4 <= int64(len(fat)); c++ {
		if next(uint32(c)) == 0 {
			free++
			if firstFree < 0 {
				firstFree = c
			}
		}
	}
	if firstFree < 0 {
		firstFree = 0xffffffff
	}
	info := make([]byte, 8)
	binary.LittleEndian.PutUint32(info, uint32(free))
	binary.LittleEndian.PutUint32(info[4:], uint32(firstFree))
	for _, s := range []int64{fsinfo, backup + fsinfo} {
		if _, err := w.WriteAt(info, off+s*sector+0x1e8); err != nil {
			return err
		}
	}

	// Walk the root directory's cluster chain for subdirectories.
	buf := make([]byte, clusterBytes)
	for c, n := root, 0; c >= 2 && c < 0x0ffffff8; c, n = next(c), n+1 {
		if int64(c) >= clusters+2 || n > int(clusters) {
			return fmt.Errorf("fixFAT: bad root directory chain at cluster %d", c)
		}
		if _, err := f.ReadAt(buf, clusterOff(c)); err != nil {
			return err
		}
		for e := 0; e+32 <= len(buf); e += 32 {
			ent := buf[e : e+32]
			if ent[0] == 0 {
				return nil
			}
			if ent[0] == 0xe5 || ent[11] == 0x0f || ent[11]&0x10 == 0 || ent[0] == '.' {
				continue
			}
			sub := uint32(le16(ent[0x14:]))<<16 | uint32(le16(ent[0x1a:]))
			if sub < 2 || int64(sub) >= clusters+2 {
				continue
			}
			dotdot := clusterOff(sub) + 32
			name := make([]byte, 11)
			if _, err := f.ReadAt(name, dotdot); err != nil {
				return err
			}
			if string(name) != "..         " {
				continue
			}
			if _, err := w.WriteAt([]byte{0, 0}, dotdot+0x14); err != nil {
				return err
			}
			if _, err := w.WriteAt([]byte{0, 0}, dotdot+0x1a); err != nil {
				return err
			}
		}
	}
	return nil
}

// fixFAT16 completes a FAT16 filesystem go-diskfs created so that
// fsck.fat finds nothing to fix: it sets the volume serial and frees the
// clusters the FAT marks used that no file or directory reaches (go-diskfs
// leaks one).
func fixFAT16(f io.ReaderAt, off int64, serial []byte) error {
	w, ok := f.(io.WriterAt)
	if !ok {
		return fmt.Errorf("fixFAT16: not writable")
	}
	bs := make([]byte, sector)
	if _, err := f.ReadAt(bs, off); err != nil {
		return err
	}
	le16 := func(b []byte) int64 { return int64(binary.LittleEndian.Uint16(b)) }
	bps, spc := le16(bs[0x0b:]), int64(bs[0x0d])
	reserved, nfats, rootEntries := le16(bs[0x0e:]), int64(bs[0x10]), le16(bs[0x11:])
	total, fatSectors := le16(bs[0x13:]), le16(bs[0x16:])
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[0x20:]))
	}
	if bps != sector || spc == 0 || fatSectors == 0 {
		return fmt.Errorf("fixFAT16: unexpected boot sector (bytes/sector %d, sectors/cluster %d)", bps, spc)
	}
	if _, err := w.WriteAt(serial, off+0x27); err != nil {
		return err
	}
	fat := make([]byte, fatSectors*sector)
	fatOff := off + reserved*sector
	if _, err := f.ReadAt(fat, fatOff); err != nil {
		return err
	}
	rootOff := fatOff + nfats*fatSectors*sector
	rootSize := rootEntries * 32
	dataOff := rootOff + (rootSize+sector-1)/sector*sector
	clusterBytes := spc * sector
	clusters := (total*sector - (dataOff - off)) / clusterBytes
	next := func(c int64) int64 { return le16(fat[2*c:]) }
	used := map[int64]bool{}

	// chain marks and returns the clusters of the chain from c.
	chain := func(c int64) ([]int64, error) {
		var out []int64
		for ; c >= 2 && c < 0xfff8; c = next(c) {
			if c >= clusters+2 || used[c] {
				return nil, fmt.Errorf("fixFAT16: bad cluster chain at %d", c)
			}
			used[c] = true
			out = append(out, c)
		}
		return out, nil
	}
	var walk func(dir []byte) error
	walk = func(dir []byte) error {
		for e := 0; e+32 <= len(dir); e += 32 {
			ent := dir[e : e+32]
			if ent[0] == 0 {
				return nil
			}
			if ent[0] == 0xe5 || ent[11] == 0x0f || ent[0] == '.' {
				continue
			}
			cs, err := chain(le16(ent[0x1a:]))
			if err != nil {
				return err
			}
			if ent[11]&0x10 == 0 || len(cs) == 0 {
				continue
			}
			sub := make([]byte, int64(len(cs))*clusterBytes)
			for i, c := range cs {
				if _, err := f.ReadAt(sub[int64(i)*clusterBytes:][:clusterBytes], dataOff+(c-2)*clusterBytes); err != nil {
					return err
				}
			}
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	root := make([]byte, rootSize)
	if _, err := f.ReadAt(root, rootOff); err != nil {
		return err
	}
	if err := walk(root); err != nil {
		return err
	}
	for c := int64(2); c < clusters+2 && 2*c+2 <= int64(len(fat)); c++ {
		if next(c) != 0 && !used[c] {
			for i := int64(0); i < nfats; i++ {
				if _, err := w.WriteAt([]byte{0, 0}, fatOff+i*fatSectors*sector+2*c); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
