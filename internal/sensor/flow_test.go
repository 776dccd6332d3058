package sensor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// flowResult is what reading a line gives, for comparisons.
func flowResult(ok bool, err error, ev *Event) string {
	return fmt.Sprintf("%v %v %+v", ok, err, *ev)
}

// TestFlowAsScan: flow (separators first, then fields) reads every line
// as flowScan (each field's end found as it goes) does — the same event,
// or the same first error — on the lines of a real conn.log and on
// damaged copies of them (bytes changed, separators added and removed,
// lines cut short, fields unset), with and without the packet counts,
// and with a header whose byte counts are left out (read from the IP
// byte counts).
func TestFlowAsScan(t *testing.T) {
	data, err := os.ReadFile(testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed", "conn.log"))
	if err != nil {
		t.Fatal(err)
	}
	var header, lines [][]byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		switch {
		case len(l) == 0:
		case l[0] == '#':
			header = append(header, l)
		default:
			lines = append(lines, l)
		}
	}
	noBytes := func(h []byte) []byte { // orig_bytes and resp_bytes renamed away
		return bytes.ReplaceAll(bytes.ReplaceAll(h, []byte("\torig_bytes"), []byte("\tx_ob")), []byte("\tresp_bytes"), []byte("\tx_rb"))
	}
	r := rand.New(rand.NewPCG(9, 10))
	const alphabet = "\t\t\t-0123456789.:abcdef"
	checked, failed := 0, 0
	for _, variant := range []string{"skip packets", "packets", "no byte counts"} {
		p := newZeekEventParser()
		if variant == "skip packets" {
			p.skipPackets()
		}
		for _, h := range header {
			if variant == "no byte counts" {
				h = noBytes(h)
			}
			if _, err := p.ParseEvent(h, &Event{}); err != nil {
				t.Fatal(err)
			}
		}
		if p.kind != EventFlow || p.last < 0 || p.last+1 > maxFlowCols {
			t.Fatalf("%s: the header does not make a conn.log read by flow (kind %d, last %d)", variant, p.kind, p.last)
		}
		for i, l := range lines {
			if i > 3000 {
				break
			}
			cands := [][]byte{l}
			for range 6 {
				m := bytes.Clone(l)
				switch r.IntN(5) {
				case 0:
					m[r.IntN(len(m))] = alphabet[r.IntN(len(alphabet))]
				case 1:
					m = m[:r.IntN(len(m)+1)]
				case 2:
					j := r.IntN(len(m))
					m = append(m[:j:j], append([]byte{'\t'}, m[j:]...)...)
				case 3:
					if j := bytes.IndexByte(m[r.IntN(len(m)):], '\t'); j >= 0 {
						k := len(m) - len(m[j:])
						m = append(m[:k:k], m[k+1:]...)
					}
				case 4:
					fs := bytes.Split(m, []byte("\t"))
					fs[r.IntN(len(fs))] = []byte("-")
					m = bytes.Join(fs, []byte("\t"))
				}
				cands = append(cands, m)
			}
			for _, c := range cands {
				var a, b Event
				okA, errA := p.flow(c, &a)
				okB, errB := p.flowScan(c, &b)
				b.Kind = EventFlow
				if x, y := flowResult(okA, errA, &a), flowResult(okB, errB, &b); x != y {
					t.Fatalf("%s: %q:\nflow:     %s\nflowScan: %s", variant, c, x, y)
				}
				checked++
				if errA != nil {
					failed++
				}
			}
		}
	}
	if failed < checked/20 || failed > checked*9/10 {
		t.Errorf("%d lines, %d bad: the damage does not exercise both paths", checked, failed)
	}
}
