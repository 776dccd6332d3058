package sensor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// fastResult is what ParseEvent made of a line: its event (as the
// struct, so that every field is compared) and its error.
type fastResult struct {
	ok  bool
	err string
	ev  Event
}

// parseBoth reads line with a parser that may take the one-pass paths
// and with one that may not (flow alone), each from a fresh event; it
// also reads it with each one-pass path alone (connStd for Zeek's
// columns, flowFast for any), whose events, when they read the line,
// must be flow's. It reports whether the first one-pass path ParseEvent
// tries (connStd for Zeek's columns, else flowFast) read it.
func parseBoth(t testing.TB, fast, slow *zeekEventParser, line []byte) (got, want fastResult, tookFast bool) {
	t.Helper()
	read := func(p *zeekEventParser) fastResult {
		var ev Event
		ok, err := p.ParseEvent(line, &ev)
		r := fastResult{ok: ok, ev: ev}
		if err != nil {
			r.err = err.Error()
		}
		return r
	}
	got, want = read(fast), read(slow)
	if fast.fast && fast.kind == EventFlow {
		paths := map[string]func([]byte, *Event) bool{"flowFast": fast.flowFast}
		if fast.std {
			paths["connStd"] = fast.connStd
		}
		for name, path := range paths {
			ev := Event{Kind: EventFlow}
			if path(line, &ev) {
				// The path ParseEvent takes first: connStd for Zeek's columns.
				tookFast = tookFast || name == "connStd" || !fast.std
				if !want.ok || want.err != "" || !sameEvent(&ev, &want.ev) {
					t.Fatalf("%q: %s read %+v\nflow %v %q %+v", line, name, ev, want.ok, want.err, want.ev)
				}
			}
		}
	}
	return got, want, tookFast
}

// headerPair returns two parsers given the same header lines, the second
// never taking the one-pass path.
func headerPair(t testing.TB, header []string, skipPkts bool) (fast, slow *zeekEventParser) {
	t.Helper()
	fast, slow = newZeekEventParser(), newZeekEventParser()
	if skipPkts {
		fast.skipPackets()
		slow.skipPackets()
	}
	for _, h := range header {
		if _, err := fast.ParseEvent([]byte(h), &Event{}); err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		_, _ = slow.ParseEvent([]byte(h), &Event{})
		slow.fast = false
	}
	return fast, slow
}

func sameResult(t testing.TB, line string, got, want fastResult) {
	t.Helper()
	if got.ok != want.ok || got.err != want.err || got.ev.Kind != want.ev.Kind || !sameEvent(&got.ev, &want.ev) {
		t.Fatalf("%q:\none pass %v %q %+v\nflow     %v %q %+v", line, got.ok, got.err, got.ev, want.ok, want.err, want.ev)
	}
}

func sameEvent(a, b *Event) bool {
	return a.Time == b.Time && a.Src == b.Src && a.Dst == b.Dst && a.SrcPort == b.SrcPort && a.DstPort == b.DstPort &&
		a.Proto == b.Proto && a.Duration == b.Duration && a.SrcBytes == b.SrcBytes && a.DstBytes == b.DstBytes &&
		a.SrcPkts == b.SrcPkts && a.DstPkts == b.DstPkts && a.SrcMAC == b.SrcMAC && a.DstMAC == b.DstMAC &&
		bytes.Equal(a.Name, b.Name) && bytes.Equal(a.Aux, b.Aux) && len(a.Addrs) == len(b.Addrs)
}

// zeekHeader splits the header lines off a Zeek TSV log.
func zeekHeader(data []byte) (header, body []string) {
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
			header = append(header, l)
		case l != "":
			body = append(body, l)
		}
	}
	return header, body
}

// connHeader is the header of Zeek's conn.log, as devicegen and Zeek
// write it.
var connHeader = []string{
	`#separator \x09`, "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tconn",
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents",
}

// TestZeekConnOnePass: the one-pass reader of conn.log lines gives the
// events flow gives, field for field, and the lines it does not read
// get flow's events and errors — on the real conn.logs (with and
// without the packet counts), on the lines the device generator writes,
// and on malformed lines of each kind.
func TestZeekConnOnePass(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek")
	type logCase struct {
		name   string
		header []string
		lines  []string
		// minFast is the least share of lines the one-pass path must read.
		minFast float64
	}
	var cases []logCase
	for _, f := range []string{filepath.Join(dir, "slips-test10-mixed", "conn.log"), filepath.Join(dir, "wrccdc-2018-03-24", "tsv", "conn.log")} {
		data, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		h, b := zeekHeader(data)
		cases = append(cases, logCase{f, h, b, 0.5})
	}
	if len(cases) == 0 {
		t.Fatal("no real TSV conn.log")
	}
	good := "1772323201.440568\tC1\t10.64.0.115\t37648\t54.247.84.238\t443\ttcp\t-\t0.391971\t729\t4262\tSF\t-\t-\t0\tShADadFf\t7\t1009\t9\t4622\t-"
	cut := func(col int, v string) string { // good with column col set to v
		f := strings.Split(good, "\t")
		f[col] = v
		return strings.Join(f, "\t")
	}
	malformed := []string{
		good,
		cut(0, "1772323201"), cut(0, ".5"), cut(0, "1772323201."), cut(0, "-"), cut(0, ""), cut(0, "1.6e9"), cut(0, "2026-03-01T00:00:01Z"),
		cut(0, "yesterday"), cut(0, "99999999999"), cut(0, "1772323201.4405681234567"), cut(0, "17723232O1.4"),
		cut(1, ""), cut(1, "(empty)"), cut(1, "CHhAvVGS1DHFjwGM9"),
		cut(2, "10.0.0.999"), cut(2, "10.0.0.01"), cut(2, "10.0.0"), cut(2, "10.0.0.1.2"), cut(2, "-"), cut(2, ""), cut(2, "2001:db8::1"),
		cut(2, "::ffff:10.0.0.1"), cut(2, "fe80::1%eth0"), cut(2, "10.0.0.1x"), cut(2, "(empty)"),
		cut(3, "70000"), cut(3, "65535"), cut(3, "000080"), cut(3, "-"), cut(3, "-1"), cut(3, "8o"),
		cut(4, "2001:db8::2"), cut(4, "256.1.1.1"), cut(4, "-"),
		cut(5, "99999999999999999999999"),
		cut(6, "udp"), cut(6, "UDP"), cut(6, "icmp"), cut(6, "unknown_transport"), cut(6, "tcpx"), cut(6, "17"), cut(6, "-"), cut(6, "ip"),
		cut(8, "-"), cut(8, "-0.1"), cut(8, "1e3"), cut(8, "0.000001"), cut(8, "12"),
		cut(9, "-"), cut(9, "many"), cut(9, "18446744073709551615"), cut(9, "1234567890123456789"), cut(9, ""),
		cut(10, "-"), cut(10, "-5"), cut(10, "(empty)"),
		cut(9, "-") + "", cut(17, "x"), cut(19, "x"),
		strings.Join(strings.Split(good, "\t")[:19], "\t"), // one column short of the last read
		strings.Join(strings.Split(good, "\t")[:20], "\t"), // ends with the last read
		strings.Join(strings.Split(good, "\t")[:11], "\t"), // ends after the byte counts
		strings.Join(strings.Split(good, "\t")[:10], "\t"),
		strings.Join(strings.Split(good, "\t")[:3], "\t"),
		good + "\textra", good + "\t", "", "\t", "-", "1772323201.440568",
		strings.Replace(good, "\t", " ", 1),
	}
	cases = append(cases, logCase{"malformed", connHeader, malformed, 0.3})
	// The generated day's lines.
	// The generated day's lines: a tenth between IPv6 addresses, some
	// without a reply (duration unset).
	var gen []string
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		src := fmt.Sprintf("10.64.%d.%d", r.IntN(4), r.IntN(256))
		dst := fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), r.IntN(256))
		if r.IntN(10) == 0 {
			src, dst = fmt.Sprintf("2001:db8::%x", r.IntN(65536)), fmt.Sprintf("2a00:1450:4001:%x::200e", r.IntN(65536))
		}
		dur := fmt.Sprintf("%d.%06d", r.IntN(100), r.IntN(1e6))
		if r.IntN(20) == 0 {
			dur = "-"
		}
		gen = append(gen, fmt.Sprintf("%d.%06d\tC%d\t%s\t%d\t%s\t%d\t%s\t-\t%s\t%d\t%d\tSF\t-\t-\t0\tShADadFf\t%d\t%d\t%d\t%d\t-",
			1772323200+r.IntN(86400), r.IntN(1e6), r.IntN(1e7), src, r.IntN(65536), dst, r.IntN(65536), []string{"tcp", "udp"}[r.IntN(2)],
			dur, r.Uint64N(1e9), r.Uint64N(1e9), r.IntN(100), r.IntN(1e6), r.IntN(100), r.IntN(1e6)))
	}
	cases = append(cases, logCase{"generated", connHeader, gen, 0.999})
	// A log of other columns: the MACs read, the byte counts last.
	macHeader := []string{"#separator \\x09", "#path\tconn", "#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\torig_l2_addr\tresp_l2_addr\tduration\tresp_bytes\torig_bytes"}
	cases = append(cases, logCase{"macs", macHeader, []string{
		"1.5\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t00:11:22:33:44:55\taa-bb-cc-dd-ee-ff\t0.1\t20\t10",
		"1.5\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0011.2233.4455\t-\t0.1\t20\t10",
		"1.5\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t00:11:22:33:44\t-\t0.1\t20\t10",
		"1.5\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t-\t-\t0.1\t20\t10\t",
		"1.5\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t-\t-\t0.1\t20\t-",
		"1.5\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t-\t-\t0.1\t20",
	}, 0.5})
	for _, c := range cases {
		for _, skip := range []bool{false, true} {
			fast, slow := headerPair(t, c.header, skip)
			if !fast.fast || fast.std != (skip && c.name != "macs") {
				t.Fatalf("%s: the one-pass reader on %v, Zeek's columns %v", c.name, fast.fast, fast.std)
			}
			n := 0
			for _, l := range c.lines {
				got, want, took := parseBoth(t, fast, slow, []byte(l))
				sameResult(t, l, got, want)
				if took {
					n++
				}
			}
			if share := float64(n) / float64(len(c.lines)); share < c.minFast {
				t.Errorf("%s (skip packets %v): the one-pass path read %d of %d lines, want at least %.0f %%", c.name, skip, n, len(c.lines), 100*c.minFast)
			}
		}
	}
}

// TestZeekConnOnePassOff: headers that let a value of the one-pass path
// be a separator or the unset or empty value turn it off, and flow reads
// such logs as before.
func TestZeekConnOnePassOff(t *testing.T) {
	fields := "ts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes"
	for _, tc := range []struct {
		header []string
		line   string
		on     bool
	}{
		{[]string{"#path\tconn", "#fields\t" + fields}, "1\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0\t10\t20", true},
		{[]string{"#path\tconn", "#unset_field\t0", "#fields\t" + fields}, "1\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0\t10\t20", false},
		{[]string{"#path\tconn", "#fields\t" + fields, "#empty_field\t1"}, "1\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0\t10\t20", false},
		{[]string{"#separator .", "#path.conn", "#fields." + strings.ReplaceAll(fields, "\t", ".")}, "1.10.0.0.1.1.8.8.8.8.53.udp.0.10.20", false},
		{[]string{"#separator ,", "#path,conn", "#fields," + strings.ReplaceAll(fields, "\t", ",")}, "1,10.0.0.1,1,8.8.8.8,53,udp,0,10,20", true},
		{[]string{"#path\tdns", "#fields\tts\tid.orig_h\tquery\tanswers"}, "1\t10.0.0.1\tx.example\t1.1.1.1", false},
	} {
		fast, slow := headerPair(t, tc.header, true)
		if fast.fast != tc.on {
			t.Errorf("%q: one-pass %v, want %v", tc.header, fast.fast, tc.on)
		}
		got, want, _ := parseBoth(t, fast, slow, []byte(tc.line))
		sameResult(t, tc.line, got, want)
	}
}

// FuzzZeekConnOnePass is TestZeekConnOnePass on any line under the
// conn.log header, with and without the packet counts.
func FuzzZeekConnOnePass(f *testing.F) {
	f.Add("1772323201.440568\tC1\t10.64.0.115\t37648\t54.247.84.238\t443\ttcp\t-\t0.391971\t729\t4262\tSF\t-\t-\t0\tShADadFf\t7\t1009\t9\t4622\t-")
	f.Add("1772323201.440568\tC1\t2001:db8::1\t37648\t54.247.84.238\t443\tudp\t-\t-\t-\t-\tS0\t-\t-\t0\tS\t1\t40\t0\t0\t-")
	f.Add("1\tC\t1.2.3.4\t1\t5.6.7.8\t2\ticmp\t(empty)\t1e2\t1\t2\tSF\t-\t-\t0\t-\t7\t1009\t9")
	fastP, slowP := headerPair(f, connHeader, true)
	fastA, slowA := headerPair(f, connHeader, false)
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") || strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
			return // not one data line
		}
		for _, p := range [][2]*zeekEventParser{{fastP, slowP}, {fastA, slowA}} {
			got, want, _ := parseBoth(t, p[0], p[1], []byte(line))
			sameResult(t, line, got, want)
		}
	})
}

// BenchmarkZeekConnOnePass parses the generated day's kind of line with
// flow, the one-pass loop over columns and the reader of Zeek's
// columns: ns per line.
func BenchmarkZeekConnOnePass(b *testing.B) {
	line := []byte("1772323201.440568\tC1\t10.64.0.115\t37648\t54.247.84.238\t443\ttcp\t-\t0.391971\t729\t4262\tSF\t-\t-\t0\tShADadFf\t7\t1009\t9\t4622\t-")
	for _, path := range []string{"flow", "flowFast", "connStd"} {
		b.Run(path, func(b *testing.B) {
			p, _ := headerPair(b, connHeader, true)
			p.fast, p.std = path != "flow", path == "connStd"
			var ev Event
			for b.Loop() {
				if ok, err := p.ParseEvent(line, &ev); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// scanSame checks that the word-at-a-time value readers give what the
// loops over bytes give, value, end and all, on s at every offset of
// a line padded with a separator and other bytes (they read eight bytes
// at a time only with room for it).
func scanSame(t *testing.T, s string) {
	for _, pad := range []string{"", "\t", "\t1234567890.12345678\t10.0.0.1\t", ".9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9"} {
		b := []byte(s + pad)
		for i := 0; i <= len(s) && i < len(b); i++ {
			if v, j, ok := scanCount(b, i); fmt.Sprint(v, j, ok) != fmt.Sprint(scanCountLoop(b, i)) {
				t.Fatalf("scanCount(%q, %d) = %v %v %v, the loop %v", b, i, v, j, ok, fmt.Sprint(scanCountLoop(b, i)))
			}
			if v, j, ok := scanPort(b, i); fmt.Sprint(v, j, ok) != fmt.Sprint(scanPortLoop(b, i)) {
				t.Fatalf("scanPort(%q, %d) = %v %v %v, the loop %v", b, i, v, j, ok, fmt.Sprint(scanPortLoop(b, i)))
			}
			if v, j, ok := scanSeconds(b, i); fmt.Sprint(v, j, ok) != fmt.Sprint(scanSecondsLoop(b, i)) {
				t.Fatalf("scanSeconds(%q, %d) = %v %v %v, the loop %v", b, i, v, j, ok, fmt.Sprint(scanSecondsLoop(b, i)))
			}
		}
	}
}

// TestScanValuesAsLoops: values of every length and shape the readers
// meet, and their near misses.
func TestScanValuesAsLoops(t *testing.T) {
	for _, s := range []string{
		"0", "7", "80", "443", "65535", "65536", "99999", "000080", "0000000000000000000000001", "18446744073709551615",
		"1234567", "12345678", "123456789", "123456789012345", "1234567890123456", "12345678901234567890",
		"1772323201.440568", "1772323201.4405681", "1772323201.44056812", "1772323201.440568123456", "9000000000.5", "9000000001",
		"0.391971", ".5", "5.", ".", "1.6e9", "12:30", "1772323201x440568",
		"10.64.0.115", "54.247.84.238", "255.255.255.255", "256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.04", "0.0.0.0", "1.2.3.4.5",
		"1..2.3", "1.2.3.4444", "10.0.0.999", "/", ":", "\xfa9", "9\xfa", "\xff\xff\xff\xff\xff\xff\xff\xff9",
	} {
		scanSame(t, s)
	}
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "0123456789.....\t-e:/\xfa"
	for range 20000 {
		b := make([]byte, r.IntN(30))
		for k := range b {
			b[k] = alphabet[r.IntN(len(alphabet))]
		}
		scanSame(t, string(b))
	}
}

// FuzzScanValuesAsLoops is TestScanValuesAsLoops on any input.
func FuzzScanValuesAsLoops(f *testing.F) {
	f.Add("1772323201.440568")
	f.Add("10.64.0.115")
	f.Add("65535")
	f.Fuzz(scanSame)
}
