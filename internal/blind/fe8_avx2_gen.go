//go:build ignore

// This program writes fe8_avx2_amd64.s, the AVX2 version of fe8's lane
// arithmetic (see fe8.go): go generate, or go run fe8_avx2_gen.go. The
// multiplication's columns, the table of multiples each needs and the
// carries are derived here from the radix, so the 100 products of mul8
// and the 55 of sqr8 are not written out by hand.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
)

var out bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&out, "\t"+format+"\n", args...) }

// The radix is 2^25.5: limb i of ten sits at bit ⌈25.5·i⌉, so limb 2i is
// the low 26 bits of fe8's 51-bit limb i and limb 2i+1 the rest.
func odd(i int) bool { return i%2 == 1 }

// term is x_i·y_j·c in column (i+j) mod 10: c is 2 where both limbs are
// odd (their positions add to one more than the column's) and 19 where
// i+j ≥ 10 (2^255 = 19 mod p).
type term struct{ i, j, c int }

func mulTerms() [10][]term {
	var cols [10][]term
	for i := range 10 {
		for j := range 10 {
			c := 1
			if odd(i) && odd(j) {
				c *= 2
			}
			if i+j >= 10 {
				c *= 19
			}
			cols[(i+j)%10] = append(cols[(i+j)%10], term{i, j, c})
		}
	}
	return cols
}

// sqrTerms are the squaring's: x_i·x_j for i ≤ j, doubled where i < j.
func sqrTerms() [10][]term {
	var cols [10][]term
	for i := range 10 {
		for j := i; j < 10; j++ {
			c := 1
			if i < j {
				c *= 2
			}
			if odd(i) && odd(j) {
				c *= 2
			}
			if i+j >= 10 {
				c *= 19
			}
			cols[(i+j)%10] = append(cols[(i+j)%10], term{i, j, c})
		}
	}
	return cols
}

type mult struct{ j, c int }

// frame assigns each multiple c·y_j (c ≤ 38, so below 2^31.25 for y_j
// below 2^26: VPMULUDQ multiplies the low 32 bits) a 32-byte slot of the
// stack frame, then the ten columns theirs.
type frame struct {
	slot map[mult]int
	list []mult
	cols int
}

func newFrame(cols [10][]term, square bool) *frame {
	f := &frame{slot: map[mult]int{}}
	for _, col := range cols {
		for _, t := range col {
			c := t.c
			if c == 76 { // 2x_i (in a register) times 38x_j
				c = 38
			}
			if c == 1 && square {
				continue // x_i·x_j from registers
			}
			m := mult{t.j, c}
			if _, ok := f.slot[m]; !ok {
				f.slot[m] = 0
				f.list = append(f.list, m)
			}
		}
	}
	sort.Slice(f.list, func(a, b int) bool {
		if f.list[a].j != f.list[b].j {
			return f.list[a].j < f.list[b].j
		}
		return f.list[a].c < f.list[b].c
	})
	for k, m := range f.list {
		f.slot[m] = 32 * k
	}
	f.cols = 32 * len(f.list)
	return f
}

func (f *frame) size() int { return f.cols + 32*10 }

// split loads half h of the fe8 at reg into Y0..Y9, the ten 2^25.5 limbs
// (Y15 holds 2^26 − 1): 51-bit limbs below 2^52 give limbs below 2^26.
func split(reg string, h int) {
	for i := range 5 {
		p("VMOVDQU %d(%s), Y%d", 64*i+32*h, reg, 2*i+1)
		p("VPAND Y15, Y%d, Y%d", 2*i+1, 2*i)
		p("VPSRLQ $26, Y%d, Y%d", 2*i+1, 2*i+1)
	}
}

// table stores the multiples the products take from memory, from Y0..Y9
// (Y13 holds 19, Y12 38).
func (f *frame) table() {
	for _, m := range f.list {
		switch m.c {
		case 1:
			p("VMOVDQU Y%d, %d(SP)", m.j, f.slot[m])
			continue
		case 2:
			p("VPADDQ Y%d, Y%d, Y10", m.j, m.j)
		case 4:
			p("VPSLLQ $2, Y%d, Y10", m.j)
		case 19:
			p("VPMULUDQ Y13, Y%d, Y10", m.j)
		case 38:
			p("VPMULUDQ Y12, Y%d, Y10", m.j)
		default:
			log.Fatalf("multiple %d", m.c)
		}
		p("VMOVDQU Y10, %d(SP)", f.slot[m])
	}
}

// columns computes the ten columns from x in Y0..Y9 and the table, into
// the frame. Each column is at most ten products of at most 2^26·2^26·38
// = 2^57.25 (or 2^27·2^31.25 for the squaring's 76): below 2^61.
func (f *frame) columns(cols [10][]term, square bool) {
	for k, col := range cols {
		for n, t := range col {
			dst := "Y11"
			if n == 0 {
				dst = "Y10"
			}
			switch {
			case square && t.c == 1:
				p("VPMULUDQ Y%d, Y%d, %s", t.j, t.i, dst)
			case t.c == 76:
				p("VPADDQ Y%d, Y%d, Y12", t.i, t.i)
				p("VPMULUDQ %d(SP), Y12, %s", f.slot[mult{t.j, 38}], dst)
			default:
				p("VPMULUDQ %d(SP), Y%d, %s", f.slot[mult{t.j, t.c}], t.i, dst)
			}
			if n > 0 {
				p("VPADDQ Y11, Y10, Y10")
			}
		}
		p("VMOVDQU Y10, %d(SP)", f.cols+32*k)
	}
}

// carry reduces the columns, reloaded into Y0..Y9 (each below 2^61), and
// stores half h of z. The order is ref10's (0→1 and 4→5 side by side,
// then 1→2 and 5→6, …, 9→0 times 19, 0→1): limbs end below 2^26 (even)
// and 2^25 (odd), but for limb 1 (below 2^25 + 2^15: the carry from 0
// after 9→0's 19·2^36) and limb 5 (below 2^25 + 2^11). Packed two by two
// into 51-bit limbs, the output is below 2^51 + 2^42. Y15 holds 2^26 − 1,
// Y14 2^25 − 1.
func (f *frame) carry(h int) {
	for k := range 10 {
		p("VMOVDQU %d(SP), Y%d", f.cols+32*k, k)
	}
	one := func(k int, tmp string) {
		shift, mask := 26, "Y15"
		if odd(k) {
			shift, mask = 25, "Y14"
		}
		p("VPSRLQ $%d, Y%d, %s", shift, k, tmp)
		p("VPAND %s, Y%d, Y%d", mask, k, k)
		if k == 9 { // 19c = 16c + 2c + c; c below 2^37, too wide for VPMULUDQ
			p("VPADDQ %s, Y0, Y0", tmp)
			p("VPSLLQ $1, %s, %s", tmp, tmp)
			p("VPADDQ %s, Y0, Y0", tmp)
			p("VPSLLQ $3, %s, %s", tmp, tmp)
			p("VPADDQ %s, Y0, Y0", tmp)
			return
		}
		p("VPADDQ %s, Y%d, Y%d", tmp, k+1, k+1)
	}
	for _, pair := range [][2]int{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {4, 8}} {
		one(pair[0], "Y10")
		one(pair[1], "Y11")
	}
	one(9, "Y10")
	one(0, "Y10")
	for i := range 5 {
		p("VPSLLQ $26, Y%d, Y%d", 2*i+1, 2*i+1)
		p("VPADDQ Y%d, Y%d, Y%d", 2*i+1, 2*i, 2*i)
		p("VMOVDQU Y%d, %d(DI)", 2*i, 64*i+32*h)
	}
}

func constants() {
	p("VPBROADCASTQ ·avx2Mask26<>(SB), Y15")
	p("VPBROADCASTQ ·avx2Mask25<>(SB), Y14")
	p("VPBROADCASTQ ·avx2Nineteen<>(SB), Y13")
	p("VPBROADCASTQ ·avx2ThirtyEight<>(SB), Y12")
}

func genMul() {
	cols := mulTerms()
	f := newFrame(cols, false)
	fmt.Fprintf(&out, `
// func mul8AVX2(z, x, y *fe8): z = x·y, four lanes at a time in radix
// 2^25.5 (VPMULUDQ: 32×32 → 64 bits per 64-bit lane). Per half: y's ten
// limbs and their multiples (%d slots) go to the frame, x's stay in
// Y0..Y9, each column is a sum of products of a register and a slot.
// z may be x or y: a half of z is written after that half of x and y is
// read.
TEXT ·mul8AVX2(SB), 0, $%d-24
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ z+0(FP), DI
`, len(f.list), f.size())
	for h := range 2 {
		constants()
		split("DX", h)
		f.table()
		split("SI", h)
		f.columns(cols, false)
		f.carry(h)
	}
	p("VZEROUPPER")
	p("RET")
}

func genSqr() {
	cols := sqrTerms()
	f := newFrame(cols, true)
	fmt.Fprintf(&out, `
// func sqr8AVX2(z, x *fe8): z = x², four lanes at a time in radix 2^25.5,
// with 55 products instead of 100 (x_i·x_j, i < j, once and doubled).
TEXT ·sqr8AVX2(SB), 0, $%d-16
	MOVQ x+8(FP), SI
	MOVQ z+0(FP), DI
`, f.size())
	for h := range 2 {
		constants()
		split("SI", h)
		f.table()
		f.columns(cols, true)
		f.carry(h)
	}
	p("VZEROUPPER")
	p("RET")
}

// carry51 propagates the carries of 51-bit limbs Y0..Y4 (below 2^62) as
// fe8_amd64.s's CARRY does; Y15 holds 2^51 − 1. Limbs end below 2^51 +
// 2^15.
func carry51() {
	for k := range 5 {
		p("VPSRLQ $51, Y%d, Y%d", k, 5+k)
	}
	for k := range 5 {
		p("VPAND Y15, Y%d, Y%d", k, k)
	}
	for k := range 4 {
		p("VPADDQ Y%d, Y%d, Y%d", 5+k, k+1, k+1)
	}
	p("VPADDQ Y9, Y0, Y0")
	p("VPSLLQ $1, Y9, Y9")
	p("VPADDQ Y9, Y0, Y0")
	p("VPSLLQ $3, Y9, Y9")
	p("VPADDQ Y9, Y0, Y0")
}

func genAddSub() {
	out.WriteString(`
// func add8AVX2(z, x, y *fe8): z = x + y, with the 51-bit limbs of fe8
// in 64-bit lanes, four at a time.
TEXT ·add8AVX2(SB), NOSPLIT, $0-24
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ z+0(FP), DI
	VPBROADCASTQ ·avx2Mask51<>(SB), Y15
`)
	for h := range 2 {
		for i := range 5 {
			p("VMOVDQU %d(SI), Y%d", 64*i+32*h, i)
			p("VPADDQ %d(DX), Y%d, Y%d", 64*i+32*h, i, i)
		}
		carry51()
		for i := range 5 {
			p("VMOVDQU Y%d, %d(DI)", i, 64*i+32*h)
		}
	}
	p("VZEROUPPER")
	p("RET")
	out.WriteString(`
// func sub8AVX2(z, x, y *fe8): z = x + 2p − y, so that no lane goes below
// zero (y's limbs are below 2^52 − 38, 2p's lowest limb).
TEXT ·sub8AVX2(SB), NOSPLIT, $0-24
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ z+0(FP), DI
	VPBROADCASTQ ·avx2Mask51<>(SB), Y15
	VPBROADCASTQ ·avx2TwoP0<>(SB), Y10
	VPBROADCASTQ ·avx2TwoPi<>(SB), Y11
`)
	for h := range 2 {
		for i := range 5 {
			p("VMOVDQU %d(SI), Y%d", 64*i+32*h, i)
			if i == 0 {
				p("VPADDQ Y10, Y0, Y0")
			} else {
				p("VPADDQ Y11, Y%d, Y%d", i, i)
			}
			p("VPSUBQ %d(DX), Y%d, Y%d", 64*i+32*h, i, i)
		}
		carry51()
		for i := range 5 {
			p("VMOVDQU Y%d, %d(DI)", i, 64*i+32*h)
		}
	}
	p("VZEROUPPER")
	p("RET")
}

// genSelect writes select8AVX2: no branch at all (every loop is unrolled
// here), every entry of the table read and masked.
func genSelect() {
	out.WriteString(`
// func select8AVX2(out *cached8, tab *[8]cached8, abs, neg uint64)
//
// out = the identity (Y+X = Y−X = Z = 1, 2dT = 0) if abs = 0, else
// tab[abs-1]; then negated if neg = 2^64 − 1 (neg is 0 or that): Y+X and
// Y−X swapped, 2dT replaced by 2p − 2dT. In constant time in abs and neg
// (see ctmul.go): no branch, every entry loaded and masked, the masks
// made by arithmetic. The frame holds entry e's mask, all ones if abs =
// e+1, at 32e, and the identity's 1 or 0 at 256. The masks go through
// memory to the vector registers: a legacy-SSE MOVQ into an X register
// (the other way) costs a state transition each time on this kind of CPU
// (select8 took 28 times longer with it on AMD Zen 3).
TEXT ·select8AVX2(SB), NOSPLIT, $288-32
	MOVQ tab+8(FP), SI
	MOVQ out+0(FP), DI
	MOVQ abs+16(FP), R8
`)
	for e := range 8 {
		p("MOVQ R8, BX")
		p("XORQ $%d, BX", e+1)
		p("SUBQ $1, BX")
		p("SARQ $63, BX")
		p("MOVQ BX, %d(SP)", 32*e)
		p("VPBROADCASTQ %d(SP), Y10", 32*e)
		p("VMOVDQU Y10, %d(SP)", 32*e)
	}
	out.WriteString("\t// Y12 = 1 if abs = 0, else 0; Y13 = neg.\n")
	p("MOVQ R8, BX")
	p("SUBQ $1, BX")
	p("SARQ $63, BX")
	p("ANDQ $1, BX")
	p("MOVQ BX, 256(SP)")
	p("VPBROADCASTQ 256(SP), Y12")
	p("VPBROADCASTQ neg+24(FP), Y13")
	// Word w of a coordinate (limb w/2, half w%2) is at 32w.
	for c := range 4 {
		for w := range 10 {
			if c < 3 && w < 2 {
				p("VMOVDQA Y12, Y%d", w)
			} else {
				p("VPXOR Y%d, Y%d, Y%d", w, w, w)
			}
		}
		for e := range 8 {
			p("VMOVDQU %d(SP), Y10", 32*e)
			for w := range 10 {
				p("VPAND %d(SI), Y10, Y11", 1280*e+320*c+32*w)
				p("VPOR Y11, Y%d, Y%d", w, w)
			}
		}
		switch c {
		case 0, 2:
			for w := range 10 {
				p("VMOVDQU Y%d, %d(DI)", w, 320*c+32*w)
			}
		case 1: // swap with Y+X where neg
			for w := range 10 {
				p("VMOVDQU %d(DI), Y10", 32*w)
				p("VPXOR Y10, Y%d, Y11", w)
				p("VPAND Y13, Y11, Y11")
				p("VPXOR Y11, Y10, Y10")
				p("VPXOR Y11, Y%d, Y%d", w, w)
				p("VMOVDQU Y10, %d(DI)", 32*w)
				p("VMOVDQU Y%d, %d(DI)", w, 320+32*w)
			}
		case 3: // 2p − 2dT where neg
			p("VPBROADCASTQ ·avx2TwoP0<>(SB), Y14")
			p("VPBROADCASTQ ·avx2TwoPi<>(SB), Y15")
			for w := range 10 {
				twoP := "Y15"
				if w < 2 {
					twoP = "Y14"
				}
				p("VPSUBQ Y%d, %s, Y11", w, twoP)
				p("VPXOR Y%d, Y11, Y11", w)
				p("VPAND Y13, Y11, Y11")
				p("VPXOR Y11, Y%d, Y%d", w, w)
				p("VMOVDQU Y%d, %d(DI)", w, 960+32*w)
			}
		}
	}
	p("VZEROUPPER")
	p("RET")
}

func main() {
	outFile := flag.String("o", "fe8_avx2_amd64.s", "the file to write")
	flag.Parse()
	out.WriteString(`// Code generated by fe8_avx2_gen.go. DO NOT EDIT.

//go:build amd64 && !purego

#include "textflag.h"

// Field arithmetic modulo p = 2^255 - 19 on eight elements at once, with
// AVX2 (see fe8.go): the memory is fe8's, five limbs of 51 bits for eight
// lanes, and each function does lanes 0-3, then 4-7 (one YMM register
// holds one limb of four lanes). Additions, subtractions and selections
// work on the 51-bit limbs as fe8_amd64.s's IFMA code does; the
// multiplications split each into two (radix 2^25.5: 26 and 25 bits) as
// they load, since VPMULUDQ multiplies 32 bits, and join them as they
// store. Inputs' limbs are below 2^52, outputs' below 2^51 + 2^42.
//
// The bounds of the multiplications, for inputs' limbs below 2^52:
//   - split, each 25.5-bit limb is below 2^26 (the odd ones too: 52 − 26);
//   - the multiples taken from the frame are c·y_j with c ≤ 38, below
//     2^31.25: VPMULUDQ reads 32 bits, so none is cut; the squaring's
//     factor 76 is (2x_i)·(38x_j), 2^27 and 2^31.25;
//   - a column is at most ten products below 2^26·2^26·38 = 2^57.25
//     (squaring: at most six, below 2^58.25): below 2^61, no overflow;
//   - the carries (ref10's order: 0→1 and 4→5, 1→2 and 5→6, …, 4→5 and
//     8→9, 9→0 times 19, 0→1) leave limbs below 2^26 (even) or 2^25
//     (odd) except limb 1, below 2^25 + 2^15 (9→0 carries below 2^37,
//     19 times that below 2^41.3, so 0→1 carries below 2^15.3) and limb
//     5, below 2^25 + 2^11 (the second 4→5 after 3→4);
//   - joined, a 51-bit limb is l_2i + 2^26·l_2i+1, below 2^51 + 2^42.
// add8 and sub8 carry as the IFMA code: sums below 2^53 + 2^52, limbs
// after the carry below 2^51 + 2^15.

DATA ·avx2Mask26<>+0(SB)/8, $0x3ffffff
GLOBL ·avx2Mask26<>(SB), RODATA|NOPTR, $8
DATA ·avx2Mask25<>+0(SB)/8, $0x1ffffff
GLOBL ·avx2Mask25<>(SB), RODATA|NOPTR, $8
DATA ·avx2Mask51<>+0(SB)/8, $0x7ffffffffffff
GLOBL ·avx2Mask51<>(SB), RODATA|NOPTR, $8
DATA ·avx2Nineteen<>+0(SB)/8, $19
GLOBL ·avx2Nineteen<>(SB), RODATA|NOPTR, $8
DATA ·avx2ThirtyEight<>+0(SB)/8, $38
GLOBL ·avx2ThirtyEight<>(SB), RODATA|NOPTR, $8
DATA ·avx2TwoP0<>+0(SB)/8, $0xFFFFFFFFFFFDA
GLOBL ·avx2TwoP0<>(SB), RODATA|NOPTR, $8
DATA ·avx2TwoPi<>+0(SB)/8, $0xFFFFFFFFFFFFE
GLOBL ·avx2TwoPi<>(SB), RODATA|NOPTR, $8
`)
	genMul()
	genSqr()
	genAddSub()
	genSelect()
	if err := os.WriteFile(*outFile, out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
