package main

import (
	"encoding/binary"
	"hash/fnv"
)

// padVersion names the padding generator: a change to what padFill writes
// must change it, so the images of the new padding get new names instead
// of overwriting the old ones in the registry.
const padVersion = "pad1"

// rng is SplitMix64: tiny, fast and fixed forever, so the padding (and the
// digests of the images holding it) never depends on a Go release.
type rng struct{ s uint64 }

func newRNG(seed string) *rng {
	h := fnv.New64a()
	h.Write([]byte(seed))
	return &rng{s: h.Sum64()}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// skewed returns a number in [0, n), small ones far more often (the
// product of two uniform draws), as a few instructions and symbols
// dominate a program.
func (r *rng) skewed(n int) int {
	v := r.next()
	a, b := v&0xffffffff, v>>32
	return int((a * b >> 32) * uint64(n) >> 32)
}

// padGen writes executable-like bytes: pages of machine-code-like
// sequences (a vocabulary of short opcode patterns with operand bytes),
// string tables, already-compressed data and zero fill, in a mix that gzip
// shrinks to about half, as it does real binaries. Not random: the same
// seed gives the same bytes.
type padGen struct {
	r     *rng
	ops   [][]byte // instruction sequences, the most used first
	words [][]byte // symbol-like words
}

func newPadGen(seed string) *padGen {
	g := &padGen{r: newRNG(padVersion + "\x00" + seed)}
	// The vocabulary is the same for every seed, as every program is
	// compiled by the same compiler: only the mix differs.
	v := newRNG(padVersion + " vocabulary")
	var insns [][]byte
	for i := 0; i < 512; i++ {
		op := make([]byte, 1+v.intn(5))
		for j := range op {
			op[j] = byte(v.next())
		}
		insns = append(insns, op)
	}
	for i := 0; i < 2048; i++ {
		var seq []byte
		for n := 2 + v.intn(5); n > 0; n-- {
			seq = append(seq, insns[v.skewed(len(insns))]...)
		}
		g.ops = append(g.ops, seq)
	}
	const letters = "abcdefghijklmnopqrstuvwxyz_etaoinshr"
	for i := 0; i < 2048; i++ {
		w := make([]byte, 3+v.intn(14))
		for j := range w {
			w[j] = letters[v.intn(len(letters))]
		}
		g.words = append(g.words, w)
	}
	return g
}

// page appends one 4 KiB page to out.
func (g *padGen) page(out []byte) []byte {
	const size = 4096
	end := len(out) + size
	switch k := g.r.intn(100); {
	case k < 72: // code
		for len(out) < end {
			out = append(out, g.ops[g.r.skewed(len(g.ops))]...)
			// operands: mostly none, else an immediate or a displacement
			n := [...]int{0, 0, 0, 0, 0, 1, 1, 4}[g.r.intn(8)]
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], g.r.next())
			out = append(out, b[:n]...)
		}
	case k < 82: // string and symbol tables
		for len(out) < end {
			out = append(out, g.words[g.r.skewed(len(g.words))]...)
			out = append(out, "_.\x00\x00/"[g.r.intn(5)])
		}
	case k < 89: // compressed resources, hashes, keys
		var b [8]byte
		for len(out) < end {
			binary.LittleEndian.PutUint64(b[:], g.r.next())
			out = append(out, b[:]...)
		}
	default: // alignment and zero-filled sections
		for len(out) < end {
			out = append(out, 0)
		}
	}
	return out[:end]
}

// fill returns the next n bytes.
func (g *padGen) fill(n int) []byte {
	out := make([]byte, 0, n+4096)
	for len(out) < n {
		out = g.page(out)
	}
	return out[:n]
}
