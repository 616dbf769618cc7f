package mkimage

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchFormats are the writers measured by BenchmarkStreaming: each kind
// of writer once (the BIOS disks and the other containers share theirs).
var benchFormats = []string{"kernel+initrd", "kernel+squashfs", "kernel+erofs", "kernel+iso", "iso-efi-initrd", "raw-efi", "qcow2-efi", "vmdk"}

// benchTree writes a root filesystem of about size bytes: a kernel, 8
// large files (half the size) and 1024 small ones in 16 directories (the
// other half), whatever the size, so trees of different sizes have the
// same entries and differ only in contents. The contents compress about
// 3:1, like binaries, and are the same on every run.
func benchTree(b *testing.B, size int64) string {
	b.Helper()
	root := b.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(filepath.Join(root, "boot/kernel"), make([]byte, 1<<20), 0o644)
	os.WriteFile(filepath.Join(root, "boot/cmdline"), []byte("console=ttyS0"), 0o644)
	rng := rand.New(rand.NewSource(1))
	words := make([][]byte, 256)
	for i := range words {
		w := make([]byte, 4+rng.Intn(12))
		rng.Read(w)
		words[i] = w
	}
	fill := func(n int64) []byte {
		out := make([]byte, 0, n+16)
		for int64(len(out)) < n {
			out = append(out, words[rng.Intn(len(words))]...)
		}
		return out[:n]
	}
	for i := 0; i < 8; i++ {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("big-%d", i)), fill(size/16), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 1024; i++ {
		dir := filepath.Join(root, "usr", fmt.Sprintf("d%02d", i/64))
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i%64)), fill(size/2048), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// peakHeap runs fn while sampling the Go heap in use every 2 ms and returns
// the highest value seen, above the heap in use before fn started.
func peakHeap(fn func() error) (uint64, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	err := fn()
	close(stop)
	wg.Wait()
	return peak.Load(), err
}

// BenchmarkStreaming writes each format from a 32 MiB and a 128 MiB root
// filesystem with the same entries and reports throughput and the peak Go
// heap for both: a streaming writer's heap does not grow with the
// contents, so heap-ratio (128 MiB tree over 32 MiB tree) stays near 1
// while the data grows 4x. Run with `make bench`.
func BenchmarkStreaming(b *testing.B) {
	sizes := []int64{32 << 20, 128 << 20}
	trees := []string{benchTree(b, sizes[0]), benchTree(b, sizes[1])}
	boot := fakeBootFiles(b)
	for _, format := range benchFormats {
		b.Run(format, func(b *testing.B) {
			var peaks [2]uint64
			b.SetBytes(sizes[0] + sizes[1])
			for i := 0; i < b.N; i++ {
				for j, tree := range trees {
					out := b.TempDir()
					p, err := peakHeap(func() error {
						return Run(context.Background(), Options{Format: format, Name: "bench", Input: tree, Output: out, BootFiles: boot})
					})
					if err != nil {
						b.Fatal(err)
					}
					peaks[j] = max(peaks[j], p)
					os.RemoveAll(out)
				}
			}
			b.ReportMetric(float64(peaks[0])/(1<<20), "heapMiB-32M")
			b.ReportMetric(float64(peaks[1])/(1<<20), "heapMiB-128M")
			b.ReportMetric(float64(peaks[1])/float64(max(peaks[0], 1)), "heap-ratio")
		})
	}
}
