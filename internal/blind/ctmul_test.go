package blind

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/oprf"
	"pgregory.net/rapid"
)

// evaluateOneByOne is the server's evaluation as it was before the batch:
// each element decoded (decodeBlinded), multiplied by the library's
// constant-time ScalarMult and encoded alone; the reference for the
// batched path.
func evaluateOneByOne(key *oprf.PrivateKey, elements [][]byte) ([][]byte, error) {
	in := make([]*edwards25519.Point, len(elements))
	for i, b := range elements {
		e, err := decodeBlinded(b)
		if err != nil {
			err.Index = i
			err.Message = fmt.Sprintf("elements[%d]: %s", i, err.Message)
			return nil, err
		}
		in[i] = e
	}
	kb, _ := key.MarshalBinary()
	k, err := scalarOf(kb)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(in))
	for i, p := range in {
		var enc [ElementLen]byte
		evaluateElement(&enc, k, p)
		out[i] = enc[:]
	}
	return out, nil
}

// randomElements returns n valid blinded elements: random points' encodings.
func randomElements(t testing.TB, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var b [64]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		var enc [32]byte
		p := mapToPoint(b[:32])
		encodeElement(&enc, p.Add(p, mapToPoint(b[32:])))
		out[i] = enc[:]
	}
	return out
}

// TestEvaluateElementsMatchesOneByOne: the batched evaluation (one point
// at a time and eight lanes on each backend the CPU runs) gives byte for byte what the
// one-by-one path gives, for batch sizes around the lanes' eight and the
// builder's 256, with edge keys and elements (the generator, small
// multiples, and the RFC's elements).
func TestEvaluateElementsMatchesOneByOne(t *testing.T) {
	g := edwards25519.NewGeneratorPoint()
	var edge [][]byte
	for _, m := range []int{1, 2, 3, 8, 15, 16, 17} {
		var enc [32]byte
		s := smallScalar(m)
		encodeElement(&enc, new(edwards25519.Point).ScalarMult(s, g))
		edge = append(edge, enc[:])
	}
	for _, tv := range loadVectors(t).Vectors {
		edge = append(edge, tv.BlindedElement)
	}
	keys := []*oprf.PrivateKey{keyOfScalar(t, smallScalar(1)), keyOfScalar(t, smallScalar(2)),
		keyOfScalar(t, new(edwards25519.Scalar).Subtract(edwards25519.NewScalar(), smallScalar(1))), // ℓ − 1
		keyOfScalar(t, scalarHalf)}
	for range 3 {
		k, err := oprf.GenerateKey(suite, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for ki, key := range keys {
		for _, n := range []int{0, 1, 7, 8, 9, 256, 257} {
			els := randomElements(t, n)
			if n > 0 && ki < 4 {
				for i := 0; i < n && i < len(edge); i++ {
					els[(i*5)%n] = edge[i]
				}
			}
			want, err := evaluateOneByOne(key, els)
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range pathsToTest() {
				restore := path.use()
				got, err := evaluateElements(key, els, path.lanes)
				restore()
				if err != nil {
					t.Fatalf("key %d, %d elements, %v: %v", ki, n, path, err)
				}
				if len(got) != n {
					t.Fatalf("key %d: %d evaluations of %d", ki, len(got), n)
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("key %d, %d elements, %v: element %d %x, want %x", ki, n, path, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestEvaluateElementsRefuses: a bad element anywhere in a batch (in the
// first, a middle or the last group of eight, or several) is refused as
// the one-by-one path refuses it: the same reason, index and message.
func TestEvaluateElementsRefuses(t *testing.T) {
	key, err := oprf.GenerateKey(suite, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var notSquare []byte // a canonical, nonnegative field element that is no element's encoding
	for i := byte(2); notSquare == nil; i += 2 {
		b := make([]byte, 32)
		b[0] = i
		if _, err := decodeElement(b); err == errNotCanonical {
			notSquare = b
		}
	}
	negative := make([]byte, 32)
	negative[0] = 1
	tooBig := bytes.Repeat([]byte{0xff}, 32)
	tooBig[31] = 0x7f
	bad := map[string][]byte{
		"identity": make([]byte, 32), "short": make([]byte, 31), "long": make([]byte, 33),
		"not a square": notSquare, "negative": negative, "not canonical": tooBig, "empty": nil,
	}
	for name, b := range bad {
		for _, n := range []int{1, 8, 9, 20} {
			for _, at := range []int{0, n / 2, n - 1} {
				els := randomElements(t, n)
				els[at] = b
				if at+3 < n {
					els[at+3] = tooBig // a second bad element, later: the first is named
				}
				_, want := evaluateOneByOne(key, els)
				var we *Error
				if !errors.As(want, &we) || we.Index != at {
					t.Fatalf("%s at %d of %d: the one-by-one path says %v", name, at, n, want)
				}
				for _, path := range pathsToTest() {
					restore := path.use()
					out, err := evaluateElements(key, els, path.lanes)
					restore()
					var ge *Error
					if out != nil || !errors.As(err, &ge) || *ge != *we {
						t.Fatalf("%s at %d of %d, %v: %v (%+v), want %+v", name, at, n, path, err, ge, we)
					}
				}
			}
		}
	}
}

// TestEvaluateElementsProperty: for random keys and batches, the batched
// path agrees with the one-by-one one.
func TestEvaluateElementsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var kb [64]byte
		copy(kb[:], rapid.SliceOfN(rapid.Byte(), 64, 64).Draw(rt, "key"))
		s, _ := new(edwards25519.Scalar).SetUniformBytes(kb[:])
		key := keyOfScalar(rt, s)
		n := rapid.IntRange(1, 20).Draw(rt, "n")
		els := make([][]byte, n)
		for i := range els {
			seed := rapid.SliceOfN(rapid.Byte(), 64, 64).Draw(rt, fmt.Sprint("element", i))
			var enc [32]byte
			p := mapToPoint(seed[:32])
			encodeElement(&enc, p.Add(p, mapToPoint(seed[32:])))
			els[i] = enc[:]
		}
		want, err := evaluateOneByOne(key, els)
		if err != nil {
			rt.Fatal(err)
		}
		for _, path := range pathsToTest() {
			restore := path.use()
			got, err := evaluateElements(key, els, path.lanes)
			restore()
			if err != nil {
				rt.Fatal(err)
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					rt.Fatalf("%v: element %d %x, want %x", path, i, got[i], want[i])
				}
			}
		}
	})
}

// TestCtSelect: the selection gives d·P for every digit in [−8, 8], one
// point at a time and on eight lanes with each backend.
func TestCtSelect(t *testing.T) {
	g := edwards25519.NewGeneratorPoint()
	var p extended
	x, y, z, tt := g.ExtendedCoordinates()
	p.X, p.Y, p.Z, p.T = *x, *y, *z, *tt
	var tab ctTable
	tab.init(&p)
	var tab8 [8]cached8
	for i := range tab {
		for j := range 8 {
			tab8[i].YplusX.set(j, &tab[i].YplusX)
			tab8[i].YminusX.set(j, &tab[i].YminusX)
			tab8[i].Z.set(j, &tab[i].Z)
			tab8[i].T2d.set(j, &tab[i].T2d)
		}
	}
	id := extended{}
	id.Y.One()
	id.Z.One()
	for d := -8; d <= 8; d++ {
		var sel cached
		sel.ctSelect(&tab, int8(d))
		var sum completed
		var got extended
		sum.add(&id, &sel, false)
		got.fromCompleted(&sum)
		pt, err := new(edwards25519.Point).SetExtendedCoordinates(&got.X, &got.Y, &got.Z, &got.T)
		if err != nil {
			t.Fatal(err)
		}
		m := smallScalar(d)
		if pt.Equal(new(edwards25519.Point).ScalarMult(m, g)) != 1 {
			t.Fatalf("digit %d: not d·P", d)
		}
		for _, b := range laneBackends() {
			sel8 := cached8{} // garbage: the selection must overwrite every limb
			for i := range limbLen {
				for j := range 8 {
					sel8.YplusX[i][j], sel8.YminusX[i][j], sel8.Z[i][j], sel8.T2d[i][j] = ^uint64(0), 7, 1<<40, 3
				}
			}
			abs, neg := ctAbsNeg(int8(d))
			restore := b.use()
			select8(&sel8, &tab8, abs, neg)
			restore()
			for j := range 8 {
				var c cached
				sel8.YplusX.get(j, &c.YplusX)
				sel8.YminusX.get(j, &c.YminusX)
				sel8.Z.get(j, &c.Z)
				sel8.T2d.get(j, &c.T2d)
				if *cachedLimbs(&c) != *cachedLimbs(&sel) {
					t.Fatalf("%s: digit %d, lane %d: select8 %v, ctSelect %v", b.name, d, j, c, sel)
				}
			}
		}
	}
}

// TestCtDigits: the digits are the library's signed radix 16 of the
// scalar: in range, and summing to it.
func TestCtDigits(t *testing.T) {
	for range 200 {
		var b [64]byte
		rand.Read(b[:])
		s, _ := new(edwards25519.Scalar).SetUniformBytes(b[:])
		d := ctDigits(s)
		acc := edwards25519.NewScalar()
		sixteen := smallScalar(16)
		for i := ctDigitCount - 1; i >= 0; i-- {
			if d[i] < -8 || d[i] > 8 || (i < ctDigitCount-1 && d[i] == 8) {
				t.Fatalf("digit %d is %d", i, d[i])
			}
			acc.Multiply(acc, sixteen)
			acc.Add(acc, smallScalar(int(d[i])))
		}
		if acc.Equal(s) != 1 {
			t.Fatal("the digits do not sum to the scalar")
		}
	}
}

// TestConstantTimeSource reads the source of the functions that handle
// the key's digits and fails on any branch (if, switch, select, && and
// ||, whose right operand is a branch) and on any index that is not a
// constant or a loop counter (a loop's own variable, bounded by a
// constant): their time must not depend on the key (see ctmul.go). The
// assembly is checked by TestConstantTimeAssembly.
func TestConstantTimeSource(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "ctmul.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{"ctDigits": false, "ctAbsNeg": false, "ctEqMask": false, "ctSelect": false,
		"ctMul": false, "ctMul8": false, "cachedLimbs": false, "init": false}
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		if _, ok := checked[fd.Name.Name]; !ok {
			continue
		}
		checked[fd.Name.Name] = true
		counters := map[string]bool{}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.IfStmt, *ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.SelectStmt, *ast.GoStmt, *ast.DeferStmt:
				t.Errorf("%s: %s: a branch in constant-time code", fd.Name.Name, fset.Position(n.Pos()))
			case *ast.BinaryExpr:
				if n.Op == token.LAND || n.Op == token.LOR {
					t.Errorf("%s: %s: a short-circuit operator in constant-time code", fd.Name.Name, fset.Position(n.Pos()))
				}
			case *ast.RangeStmt:
				if id, ok := n.Key.(*ast.Ident); ok {
					counters[id.Name] = true
				}
			case *ast.ForStmt:
				if as, ok := n.Init.(*ast.AssignStmt); ok {
					for _, l := range as.Lhs {
						counters[l.(*ast.Ident).Name] = true
					}
				}
			case *ast.IndexExpr:
				if !indexIsPublic(n.Index, counters) {
					t.Errorf("%s: %s: an index that is not a constant or a loop counter", fd.Name.Name, fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	for name, seen := range checked {
		if !seen {
			t.Errorf("%s: not found in ctmul.go", name)
		}
	}
}

// TestConstantTimeAssembly reads the assembly that runs on the key's
// path (the lane arithmetic: ctMul8's field operations and selection)
// and fails on any branch but those it expects, and on any memory
// operand with an index register (an address made from data): the AVX2
// functions have no branch at all, the IFMA select8 only its loop's
// (taken eight times whatever the digit), and the dispatching functions
// only the jump on useIFMA, a public flag set at start-up.
func TestConstantTimeAssembly(t *testing.T) {
	allowed := map[string][]string{ // function → its branches, in order
		"mul8AVX2": nil, "sqr8AVX2": nil, "add8AVX2": nil, "sub8AVX2": nil, "select8AVX2": nil,
		"mul8IFMA": nil, "sqr8IFMA": nil, "add8IFMA": nil, "sub8IFMA": nil, "select8IFMA": {"JNE selectLoop"},
	}
	for _, f := range []string{"mul8", "sqr8", "add8", "sub8", "select8"} {
		allowed[f] = []string{"JEQ avx2", "JMP ·" + f + "IFMA(SB)", "JMP ·" + f + "AVX2(SB)"}
	}
	text := regexp.MustCompile(`^TEXT ·(\w+)\(SB\)`)
	jump := regexp.MustCompile(`^(J[A-Z]+|LOOP\w*|CALL)\b`)
	seen := map[string]bool{}
	for _, file := range []string{"fe8_amd64.s", "fe8_avx2_amd64.s"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fn := ""
		var branches []string
		flush := func() {
			if fn == "" {
				return
			}
			want, ok := allowed[fn]
			if !ok {
				t.Errorf("%s: %s: a function this test does not know", file, fn)
			}
			seen[fn] = true
			if strings.Join(branches, "; ") != strings.Join(want, "; ") {
				t.Errorf("%s: %s: branches %q, want %q", file, fn, branches, want)
			}
		}
		for n, line := range strings.Split(string(src), "\n") {
			line = strings.TrimSpace(line)
			if m := text.FindStringSubmatch(line); m != nil {
				flush()
				fn, branches = m[1], nil
				continue
			}
			if fn == "" || strings.HasPrefix(line, "//") {
				continue
			}
			// Inside a macro, each instruction ends with "; \".
			for _, ins := range strings.Split(strings.TrimSuffix(line, "\\"), ";") {
				ins = strings.Join(strings.Fields(ins), " ")
				if jump.MatchString(ins) {
					branches = append(branches, ins)
				}
				if strings.Contains(ins, "*") {
					t.Errorf("%s:%d: %s: an indexed memory operand: %s", file, n+1, fn, ins)
				}
			}
		}
		flush()
	}
	for fn := range allowed {
		if !seen[fn] {
			t.Errorf("%s: not found in the assembly", fn)
		}
	}
}

// indexIsPublic reports whether an index is built of literals, constants
// of the package and loop counters only.
func indexIsPublic(e ast.Expr, counters map[string]bool) bool {
	ok := true
	ast.Inspect(e, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			if !counters[n.Name] && n.Name != "ctDigitCount" && n.Name != "limbLen" {
				ok = false
			}
		case *ast.CallExpr, *ast.IndexExpr, *ast.StarExpr, *ast.SelectorExpr:
			ok = false
		}
		return true
	})
	return ok
}

func smallScalar(m int) *edwards25519.Scalar {
	var b [32]byte
	neg := m < 0
	if neg {
		m = -m
	}
	b[0], b[1] = byte(m), byte(m>>8)
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(b[:])
	if err != nil {
		panic(err)
	}
	if neg {
		s.Negate(s)
	}
	return s
}

func keyOfScalar(t interface{ Fatal(...any) }, s *edwards25519.Scalar) *oprf.PrivateKey {
	k := new(oprf.PrivateKey)
	if err := k.UnmarshalBinary(suite, s.Bytes()); err != nil {
		t.Fatal(err)
	}
	return k
}

// BenchmarkEvaluateElements measures the server's evaluation alone
// (decode, multiply, encode) of batches of 256: the one-by-one reference
// (the library's ScalarMult, an encoding each), the batch one point at a
// time, and the batch on eight lanes with each backend the CPU runs.
func BenchmarkEvaluateElements(b *testing.B) {
	var seed [64]byte
	for i := range seed {
		seed[i] = byte(7*i + 1)
	}
	s, _ := new(edwards25519.Scalar).SetUniformBytes(seed[:])
	key := keyOfScalar(b, s)
	els := randomElements(b, 256)
	b.Run("one-by-one", func(b *testing.B) {
		for b.Loop() {
			if _, err := evaluateOneByOne(key, els); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(els)), "ns/element")
	})
	for _, path := range pathsToTest() {
		b.Run(path.String(), func(b *testing.B) {
			defer path.use()()
			for b.Loop() {
				_, err := evaluateElements(key, els, path.lanes)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(els)), "ns/element")
		})
	}
}
