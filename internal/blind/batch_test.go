package blind

import (
	"crypto/rand"
	"fmt"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/oprf"
)

// TestBatchEvaluateMatchesFull: the set builder's batched evaluation
// gives fullEvaluate's key for every input, whatever the batch's size,
// with the eight-lane multiplication (where the CPU has it) and without,
// and its expand_message_xmd (with the zero block hashed once) gives
// expandXMD's bytes.
func TestBatchEvaluateMatchesFull(t *testing.T) {
	for _, path := range pathsToTest() {
		t.Run(path.String(), func(t *testing.T) {
			defer path.use()()
			testBatchEvaluateMatchesFull(t, path.lanes)
		})
	}
}

func testBatchEvaluateMatchesFull(t *testing.T, lanes bool) {
	for _, n := range []int{1, 2, 3, 8, 9, 17, 256, 301} {
		key, err := oprf.GenerateKey(suite, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := key.MarshalBinary()
		k, err := scalarOf(kb)
		if err != nil {
			t.Fatal(err)
		}
		inputs := make([]string, n)
		for i := range inputs {
			inputs[i] = fmt.Sprintf("ipv4\x0010.%d.%d.%d", i>>16, (i>>8)&255, i&255)
		}
		inputs[0] = "" // the empty input is an input too
		be := newBatchEvaluator(k)
		if !lanes {
			be.lanes = nil
		}
		got := make([]uint64, n)
		for round := range 2 { // scratch space reused
			be.evaluate(got, inputs)
			for i, in := range inputs {
				var o [OutputLen]byte
				fullEvaluate(&o, k, []byte(in))
				if want := Key(o[:]); got[i] != want {
					t.Fatalf("lanes %v, n=%d round %d input %q: batch %x, full %x", lanes, n, round, in, got[i], want)
				}
				var a, b [64]byte
				expandXMD(&a, []byte(in), hashToGroupDST)
				be.expandXMD(&b, in)
				if a != b {
					t.Fatalf("input %q: expand_message_xmd differs", in)
				}
			}
		}
	}
}

// TestDoubleEncode: the batched double-and-encode equals encoding each
// double alone, for random points, the identity and the points of small
// order in a batch (whose products are zero and are encoded alone
// without spoiling the others' shared inversion).
func TestDoubleEncode(t *testing.T) {
	var pts []edwards25519.Point
	for i := range 40 {
		pts = append(pts, *hashToGroup(fmt.Appendf(nil, "p%d", i)))
	}
	id := edwards25519.NewIdentityPoint()
	pts[3] = *id
	// (0, −1), the point of order 2 (encoded by its y, little endian).
	minusOne := [32]byte{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	two, err := new(edwards25519.Point).SetBytes(minusOne[:])
	if err != nil {
		t.Fatal(err)
	}
	pts[7] = *two
	pts[8].Add(&pts[9], two) // a point plus torsion: same encoding class
	be := newBatchEvaluator(edwards25519.NewScalar())
	be.st = make([]doubleState, len(pts))
	be.prefix = make([]field.Element, len(pts))
	ext := make([]extended, len(pts))
	for i := range pts {
		x, y, z, t := pts[i].ExtendedCoordinates()
		ext[i] = extended{*x, *y, *z, *t}
	}
	out := make([][32]byte, len(pts))
	be.doubleEncode(out, ext)
	for i := range pts {
		var d edwards25519.Point
		var want [32]byte
		encodeElement(&want, d.Add(&pts[i], &pts[i]))
		if out[i] != want {
			t.Errorf("point %d: batch %x, alone %x", i, out[i], want)
		}
	}
}

// BenchmarkBatchEvaluate measures the set builder's evaluation of 256
// inputs under a fixed key (the number of additions of the scalar
// multiplication depends on the key: a fixed one makes runs comparable,
// under callgrind too), multiplying one point at a time and, where the
// CPU has AVX-512 IFMA, eight (valgrind has no AVX-512: under callgrind
// only the first runs).
func BenchmarkBatchEvaluate(b *testing.B) {
	var seed [64]byte
	for i := range seed {
		seed[i] = byte(7*i + 1)
	}
	k, err := new(edwards25519.Scalar).SetUniformBytes(seed[:])
	if err != nil {
		b.Fatal(err)
	}
	inputs := make([]string, 256)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("ipv4\x0010.0.%d.%d", i>>8, i&255)
	}
	out := make([]uint64, len(inputs))
	for _, path := range pathsToTest() {
		b.Run(path.String(), func(b *testing.B) {
			defer path.use()()
			be := newBatchEvaluator(k)
			if !path.lanes {
				be.lanes = nil
			}
			for b.Loop() {
				be.evaluate(out, inputs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(inputs)), "ns/input")
		})
	}
}

// TestBatchEvaluateAllocatesNothing: once its scratch space has grown, the
// batch evaluator allocates nothing per input (the set builder evaluates
// a million), with eight lanes or one point at a time.
func TestBatchEvaluateAllocatesNothing(t *testing.T) {
	inputs := make([]string, 256)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("domain\x00host%d.example.com", i)
	}
	out := make([]uint64, len(inputs))
	for _, path := range pathsToTest() {
		restore := path.use()
		be := newBatchEvaluator(scalarHalf)
		if !path.lanes {
			be.lanes = nil
		}
		be.evaluate(out, inputs)
		if n := testing.AllocsPerRun(3, func() { be.evaluate(out, inputs) }); n != 0 {
			t.Errorf("%v: %v allocations per batch of %d", path, n, len(inputs))
		}
		restore()
	}
}
