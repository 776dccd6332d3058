package match

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/testutil"
)

// zeekRows reads a real Zeek TSV log into rows keyed by field name, in
// line order, with each row's line number: the test's own reading,
// independent of the sensor package.
func zeekRows(t *testing.T, path string) ([]map[string]string, []int64, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var rows []map[string]string
	var lines []int64
	for i, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		t := strings.TrimLeft(l, " \t")
		if strings.HasPrefix(t, "#fields\t") {
			names = strings.Split(t, "\t")[1:]
		}
		if strings.HasPrefix(t, "#") || l == "" {
			continue
		}
		row := map[string]string{}
		for j, v := range strings.Split(l, "\t") {
			row[names[j]] = v
		}
		rows = append(rows, row)
		lines = append(lines, int64(i+1))
	}
	return rows, lines, data
}

// indicatorBundle returns a STIX bundle of one indicator per pattern,
// with ids indicator--00000000-0000-4000-8000-00000000000N (N from 1).
func indicatorBundle(patterns []string) []byte {
	var objs []string
	for i, p := range patterns {
		q, _ := json.Marshal(p)
		objs = append(objs, fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":%s,"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, i+1, q))
	}
	return []byte(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":[` + strings.Join(objs, ",") + `]}`)
}

func indicatorN(i int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i+1) }

// runPatterns loads the patterns (and the plain values) and matches the
// log; it returns the hit lines per indicator id.
func runPatterns(t *testing.T, patterns []string, name string, log []byte) (map[string][]int64, *Result) {
	t.Helper()
	b := NewBuilder()
	ps := NewPatternSet()
	b.CollectPatterns(ps)
	st, err := LoadFile(b, "indicators.json", bytes.NewReader(indicatorBundle(patterns)), time.Now())
	if err != nil || st.Invalid != 0 {
		t.Fatalf("load: %v %v", err, st.Problems)
	}
	if st.Evaluated != len(patterns) || ps.Len() != len(patterns) {
		t.Fatalf("%d of %d patterns for the evaluator (set: %d)", st.Evaluated, len(patterns), ps.Len())
	}
	var hits bytes.Buffer
	res, err := Run(context.Background(), Options{Snapshot: b.Snapshot(), Patterns: ps, Hits: &hits,
		Logs: []sensor.Input{{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(log)), nil }}},
		Scan: sensor.Options{ChunkSize: 4 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int64{}
	for _, l := range strings.Split(strings.TrimSpace(hits.String()), "\n") {
		if l == "" {
			continue
		}
		var h HitRecord
		if err := json.Unmarshal([]byte(l), &h); err != nil {
			t.Fatal(err)
		}
		if h.Kind != "pattern" || h.File != name {
			t.Errorf("hit %s: want kind pattern in %s", l, name)
		}
		got[h.Indicator] = append(got[h.Indicator], h.Line)
	}
	return got, res
}

func checkLines(t *testing.T, what string, got, want []int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: hit lines %v, want %v", what, got, want)
	}
}

// TestEvaluateZeekConn evaluates patterns the snapshot cannot hold
// against the real conn.log, each hit compared with what the test finds
// by reading the log itself.
func TestEvaluateZeekConn(t *testing.T) {
	path := filepath.Join(testutil.SharedData(t, "logs", "zeek"), "slips-test10-mixed", "conn.log")
	rows, lines, data := zeekRows(t, path)
	patterns := []string{
		// Anchored on an address, decided by each record.
		"[network-traffic:dst_ref.value = '2001:718:2:1611:0:1:0:90' AND network-traffic:dst_port = 53]",
		// No anchor: a port and a protocol.
		"[network-traffic:dst_port = 5353 AND network-traffic:protocols[*] = 'udp']",
		// Anchored, never true: the address is never a DNS server.
		"[network-traffic:dst_ref.value = '224.0.0.251' AND network-traffic:dst_port = 53]",
		// Over the stream: every fifth connection to the mDNS group.
		"[network-traffic:dst_ref.value = '224.0.0.251'] REPEATS 5 TIMES",
		// Over the stream: one connection to each mDNS group, IPv4 and IPv6.
		"[ipv4-addr:value = '224.0.0.251'] AND [ipv6-addr:value = 'ff02::fb']",
		// Negation and a byte count.
		"[network-traffic:dst_port = 443 AND network-traffic:src_byte_count > 1000 AND network-traffic:protocols[*] NOT = 'udp']",
	}
	got, res := runPatterns(t, patterns, "conn.log", data)

	var want [6][]int64
	var n4, n4all int
	var seen4, seen6 bool
	for i, r := range rows {
		l := lines[i]
		if r["id.resp_h"] == "2001:718:2:1611:0:1:0:90" && r["id.resp_p"] == "53" {
			want[0] = append(want[0], l)
		}
		if r["id.resp_p"] == "5353" && r["proto"] == "udp" {
			want[1] = append(want[1], l)
		}
		if r["id.resp_h"] == "224.0.0.251" && r["id.resp_p"] == "53" {
			want[2] = append(want[2], l)
		}
		if r["id.resp_h"] == "224.0.0.251" {
			n4all++
			if n4++; n4 == 5 {
				want[3] = append(want[3], l)
				n4 = 0
			}
		}
		is4 := r["id.orig_h"] == "224.0.0.251" || r["id.resp_h"] == "224.0.0.251"
		is6 := r["id.orig_h"] == "ff02::fb" || r["id.resp_h"] == "ff02::fb"
		seen4, seen6 = seen4 || is4, seen6 || is6
		if seen4 && seen6 {
			want[4] = append(want[4], l)
			seen4, seen6 = false, false
		}
		var ob int
		fmt.Sscan(r["orig_bytes"], &ob)
		notUDP := r["proto"] != "udp" // protocols: proto, then the services
		for _, sv := range strings.Split(r["service"], ",") {
			notUDP = notUDP || sv != "-" && sv != "" && sv != "udp"
		}
		if r["id.resp_p"] == "443" && ob > 1000 && notUDP {
			want[5] = append(want[5], l)
		}
	}
	if len(want[0]) == 0 || len(want[1]) == 0 || len(want[3]) == 0 || len(want[4]) == 0 || len(want[5]) == 0 || n4all < 10 {
		t.Fatalf("the log no longer holds what the test expects: %v", want)
	}
	for i := range patterns {
		checkLines(t, patterns[i], got[indicatorN(i)], want[i])
	}
	if res.EvalErrors != 0 {
		t.Errorf("%d evaluation errors", res.EvalErrors)
	}
	var total int64
	for _, w := range want {
		total += int64(len(w))
	}
	if res.PatternHits != total || res.Hits != total {
		t.Errorf("pattern hits %d, hits %d, want %d", res.PatternHits, res.Hits, total)
	}
	// Sightings count the hits per indicator.
	for _, s := range res.Sightings {
		for i := range patterns {
			if s.Indicator == indicatorN(i) && s.Count != int64(len(want[i])) {
				t.Errorf("sighting of %s: count %d, want %d", patterns[i], s.Count, len(want[i]))
			}
		}
	}
}

// TestEvaluateEVE evaluates patterns against the real Suricata EVE log.
func TestEvaluateEVE(t *testing.T) {
	f, err := os.Open(filepath.Join(testutil.SharedData(t, "logs", "suricata"), "slips-test6-malicious", "eve.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	patterns := []string{
		"[network-traffic:dst_port = 80 AND network-traffic:extensions.'http-request-ext'.request_method = 'GET']",
		"[network-traffic:dst_port != 80 AND network-traffic:extensions.'http-request-ext'.request_header.Host = '147.32.82.197']",
		"[url:value = 'http://147.32.82.197/' AND url:value LIKE 'http://147.32.82.197/%']",
		"[domain-name:value LIKE '%.stratosphere.org' OR ipv4-addr:value ISSUBSET '162.142.125.0/24'] AND [network-traffic:protocols[*] = 'dns']",
	}
	got, res := runPatterns(t, patterns, "eve.json", data)
	var want [4][]int64
	var seenA, seenB bool
	for i, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var ev struct {
			Src      string `json:"src_ip"`
			DstIP    string `json:"dest_ip"`
			DstPort  int    `json:"dest_port"`
			AppProto string `json:"app_proto"`
			DNS      *struct {
				RRName string `json:"rrname"`
			} `json:"dns"`
		}
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatal(err)
		}
		var http struct {
			HTTP struct {
				Host   string `json:"hostname"`
				URL    string `json:"url"`
				Method string `json:"http_method"`
			} `json:"http"`
		}
		json.Unmarshal(l, &http)
		line := int64(i + 1)
		if ev.DstPort == 80 && http.HTTP.Method == "GET" {
			want[0] = append(want[0], line)
		}
		isURL := http.HTTP.Host == "147.32.82.197" && http.HTTP.URL == "/"
		if http.HTTP.Host == "147.32.82.197" && ev.DstPort != 80 {
			want[1] = append(want[1], line)
		}
		if isURL {
			want[2] = append(want[2], line)
		}
		a := (ev.DNS != nil && strings.HasSuffix(strings.ToLower(ev.DNS.RRName), ".stratosphere.org")) ||
			strings.HasPrefix(ev.Src, "162.142.125.") || strings.HasPrefix(ev.DstIP, "162.142.125.")
		b := ev.AppProto == "dns"
		if a || b {
			// One record may satisfy both sides, but AND needs two.
			if seenA && b || seenB && a {
				want[3] = append(want[3], line)
				seenA, seenB = false, false
				continue
			}
			seenA, seenB = seenA || a, seenB || b
		}
	}
	for i := range patterns {
		if len(want[i]) == 0 {
			t.Fatalf("the log no longer holds what the test expects for %s", patterns[i])
		}
		checkLines(t, patterns[i], got[indicatorN(i)], want[i])
	}
	if res.EvalErrors != 0 {
		t.Errorf("%d evaluation errors", res.EvalErrors)
	}
}

// FuzzEvaluate runs the evaluator on any log: it must not panic, and the
// hits must not depend on how the input is split into chunks (the stream
// stage sees records in input order whatever the workers do).
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte("#separator \\x09\n#set_separator\t,\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\torig_bytes\n" +
		"1601998376.1\t10.0.0.1\t5353\t224.0.0.251\t5353\tudp\tdns\t2000\n1601998377.1\tff02::fb\t1\t224.0.0.251\t53\ttcp\t-\t-\n"))
	f.Add([]byte(`{"timestamp":"2021-06-06T15:57:37.272281+0200","event_type":"http","src_ip":"162.142.125.53","dest_ip":"192.168.1.129","dest_port":554,"proto":"TCP","http":{"hostname":"147.32.82.197","url":"/","http_method":"GET"},"host":"x"}` + "\n" +
		`{"event_type":"dns","src_ip":"::1","dest_ip":"224.0.0.251","app_proto":"dns","dns":{"rrname":"A.Stratosphere.org.","answers":[{"rdata":"1.2.3.4"}]},"fileinfo":{"sha256":"00","size":"x"}}` + "\n"))
	f.Add([]byte("#fields\tid.resp_h\tanswers\tmd5\tmailfrom\n224.0.0.251\ta.b,1.2.3.4,::ffff:1.2.3.4\t00112233445566778899aabbccddeeff\tX <a@b.c>\n-\t(empty)\t-\t-\n"))
	patterns := []string{
		"[network-traffic:dst_ref.value = '224.0.0.251' AND network-traffic:dst_port = 5353]",
		"[network-traffic:dst_port = 53 OR network-traffic:src_byte_count > 1000]",
		"[network-traffic:dst_ref.value = '224.0.0.251'] REPEATS 2 TIMES",
		"([ipv4-addr:value = '224.0.0.251'] FOLLOWEDBY [domain-name:value LIKE '%.org']) WITHIN 60 SECONDS",
		"[url:value = 'http://147.32.82.197/' AND url:value MATCHES '^http']",
		"[file:hashes.MD5 = '00112233445566778899aabbccddeeff' AND file:size > 0] OR [email-addr:value = 'a@b.c']",
	}
	bundle := indicatorBundle(patterns)
	f.Fuzz(func(t *testing.T, data []byte) {
		var outs [2]string
		longest := 0 // the small chunks hold the longest line, and little more
		for _, l := range bytes.Split(data, []byte("\n")) {
			longest = max(longest, len(l)+1)
		}
		for i, chunk := range []int{max(longest, 16), 1 << 20} {
			b := NewBuilder()
			ps := NewPatternSet()
			b.CollectPatterns(ps)
			if _, err := LoadFile(b, "i.json", bytes.NewReader(bundle), time.Now()); err != nil {
				t.Fatal(err)
			}
			var hits bytes.Buffer
			res, err := Run(context.Background(), Options{Snapshot: b.Snapshot(), Patterns: ps, Hits: &hits,
				Now:  func() time.Time { return time.Unix(1700000000, 0) },
				Logs: []sensor.Input{{Name: "log", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}},
				Scan: sensor.Options{ChunkSize: chunk, Workers: 2}})
			if err != nil {
				return // undetectable format
			}
			outs[i] = fmt.Sprint(res.PatternHits, res.Evaluated, "\n", hits.String())
		}
		if outs[0] != outs[1] {
			t.Errorf("chunked %q\nwhole %q", outs[0], outs[1])
		}
	})
}

// TestEvaluateRepeatsBeyondWindow: a REPEATS count larger than the
// default window still matches, once per that many records.
func TestEvaluateRepeatsBeyondWindow(t *testing.T) {
	path := filepath.Join(testutil.SharedData(t, "logs", "zeek"), "slips-test10-mixed", "conn.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var header, row []byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		if t := bytes.TrimLeft(l, " \t"); bytes.HasPrefix(t, []byte("#")) {
			if !bytes.HasPrefix(t, []byte("#close")) {
				header = append(append(header, t...), '\n')
			}
		} else if bytes.Contains(l, []byte("\t224.0.0.251\t")) && row == nil {
			row = append(l, '\n')
		}
	}
	log := append([]byte{}, header...)
	for range 700 {
		log = append(log, row...)
	}
	got, _ := runPatterns(t, []string{"[network-traffic:dst_ref.value = '224.0.0.251'] REPEATS 300 TIMES"}, "conn.log", log)
	first := int64(bytes.Count(header, []byte("\n")))
	checkLines(t, "REPEATS 300 TIMES", got[indicatorN(0)], []int64{first + 300, first + 600})
}

// TestPatternsTravelWithSnapshot: the patterns for the evaluator are
// serialised with the snapshot a node serves, and a sensor reading it
// back finds the same hits; a corrupt pattern is an error naming it.
func TestPatternsTravelWithSnapshot(t *testing.T) {
	path := filepath.Join(testutil.SharedData(t, "logs", "zeek"), "slips-test10-mixed", "conn.log")
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pats := []string{
		"[network-traffic:dst_ref.value = '224.0.0.251'] REPEATS 5 TIMES",
		"[network-traffic:dst_port = 5353 AND network-traffic:protocols[*] = 'udp']",
		"[ipv4-addr:value = '224.0.0.251']", // compiled, not for the evaluator
	}
	var objs []json.RawMessage
	var bundle struct{ Objects []json.RawMessage }
	if err := json.Unmarshal(indicatorBundle(pats), &bundle); err != nil {
		t.Fatal(err)
	}
	objs = bundle.Objects
	snap, st, err := BuildFromObjects(func(yield func(json.RawMessage, error) bool) {
		for _, o := range objs {
			if !yield(o, nil) {
				return
			}
		}
	}, time.Now())
	if err != nil || st.Evaluated != 2 || snap.Patterns().Len() != 2 {
		t.Fatalf("build: %v, %+v, %d patterns", err, st, snap.Patterns().Len())
	}
	data, _, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if back.Patterns().Len() != 2 {
		t.Fatalf("read back %d patterns, want 2", back.Patterns().Len())
	}
	hits := func(s *Snapshot) string {
		var out bytes.Buffer
		_, err := Run(context.Background(), Options{Snapshot: s, Patterns: s.Patterns(), Hits: &out,
			Logs: []sensor.Input{{Name: "conn.log", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(log)), nil }}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	a, b := hits(snap), hits(back)
	if a != b || !strings.Contains(a, `"kind":"pattern"`) || !strings.Contains(a, `"kind":"ipv4"`) {
		t.Errorf("hits before and after the round trip differ or lack a kind:\n%s\n---\n%s", a, b)
	}
	// Corrupt the first pattern's text: the snapshot is refused.
	i := bytes.Index(data, []byte("REPEATS"))
	bad := bytes.Clone(data)
	copy(bad[i:], "REPEATZ")
	if _, err := ReadSnapshot(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), indicatorN(0)) {
		t.Errorf("corrupt pattern: %v, want an error naming %s", err, indicatorN(0))
	}
}

// TestEvaluateProblemsNameTheLine: a record the fast reader takes but
// the evaluator cannot decode is counted and described with its line.
func TestEvaluateProblemsNameTheLine(t *testing.T) {
	log := []byte(`{"event_type":"flow","src_ip":"192.0.2.1","dest_ip":"192.0.2.2","dest_port":53,"proto":"UDP","app_proto":"dns"}` + "\n" +
		`{"event_type":"flow","src_ip":"192.0.2.1","dest_ip":"192.0.2.2","dest_port":53,"bytes":1-2}` + "\n")
	got, res := runPatterns(t, []string{"[network-traffic:dst_port = 53]"}, "eve.json", log)
	checkLines(t, "dst_port = 53", got[indicatorN(0)], []int64{1})
	if res.Stats.Bad != 0 || res.EvalErrors != 1 || len(res.EvalProblems) != 1 || !strings.HasPrefix(res.EvalProblems[0], "eve.json:2: ") {
		t.Errorf("bad %d, evaluation errors %d %q; want line 2 described", res.Stats.Bad, res.EvalErrors, res.EvalProblems)
	}
}

// TestPatternSetClasses sorts the real valid patterns of the shared
// corpus: those the snapshot holds, those the evaluator anchors, and
// those it cannot anchor, among which the ones naming only object types
// no log record yields.
func TestPatternSetClasses(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.SharedData(t, "patterns"), "stix21-valid-patterns.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ps := NewPatternSet()
	compiled := 0
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		vals, p, err := compilePattern(l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if vals != nil {
			compiled++
			continue
		}
		if err := ps.Add("indicator--x", p); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	anchored := 0
	for _, p := range ps.pats {
		if p.anchored {
			anchored++
		}
	}
	t.Logf("%d compiled, %d anchored, %d not anchored, of which %d unobservable", compiled, anchored, ps.Len()-anchored, ps.Unobservable())
	if compiled == 0 || anchored == 0 || ps.Unobservable() == 0 || ps.Unobservable() >= ps.Len()-anchored {
		t.Errorf("classes: %d compiled, %d anchored, %d unobservable of %d", compiled, anchored, ps.Unobservable(), ps.Len())
	}
	// Unobservable patterns are never candidates.
	ev := newEvaluator(ps.snapshotForRun())
	all := []sensor.Obs{{Kind: sensor.ObsIP, Value: []byte("192.168.122.83")}, {Kind: sensor.ObsURL, Value: []byte("example.com"), Aux: []byte("/foo")},
		{Kind: sensor.ObsHash, Value: []byte("8665c8d477534008b3058b72e2dae8ae")}, {Kind: sensor.ObsEmail, Value: []byte("a@ibm.com")}}
	for _, i := range ev.candidates(all) {
		if p := ps.pats[i]; p.types&^tOther == 0 {
			t.Errorf("unobservable %s is a candidate", p.src)
		}
	}
}

// TestEvaluateFollowedByWithin decides FOLLOWEDBY and WITHIN over the
// stream of the real conn.log, compared with a model the test runs on
// the log's own timestamps: the records satisfying either side are
// kept, a match needs distinct records (the right one no earlier than
// the left one for FOLLOWEDBY; two within 1 s for WITHIN), and each
// hit starts afresh.
func TestEvaluateFollowedByWithin(t *testing.T) {
	path := filepath.Join(testutil.SharedData(t, "logs", "zeek"), "slips-test10-mixed", "conn.log")
	rows, lines, data := zeekRows(t, path)
	patterns := []string{
		"[ipv4-addr:value = '224.0.0.251'] FOLLOWEDBY [ipv6-addr:value = 'ff02::fb']",
		"[network-traffic:dst_ref.value = '224.0.0.251'] REPEATS 2 TIMES WITHIN 1 SECONDS",
	}
	got, res := runPatterns(t, patterns, "conn.log", data)
	type rec struct {
		ts   float64
		a, b bool
	}
	has := func(r map[string]string, v string) bool { return r["id.orig_h"] == v || r["id.resp_h"] == v }
	var want [2][]int64
	var fb, wi []rec
	for i, r := range rows {
		ts, err := strconv.ParseFloat(r["ts"], 64)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := has(r, "224.0.0.251"), has(r, "ff02::fb"); a || b {
			fb = append(fb, rec{ts, a, b})
			hit := false
			for x := range fb {
				for y := range fb {
					hit = hit || x != y && fb[x].a && fb[y].b && fb[y].ts >= fb[x].ts
				}
			}
			if hit {
				want[0] = append(want[0], lines[i])
				fb = nil
			}
		}
		if r["id.resp_h"] == "224.0.0.251" {
			wi = append(wi, rec{ts: ts})
			for len(wi) > 1 && ts-wi[0].ts > 1 {
				wi = wi[1:]
			}
			hit := false
			for x := range wi {
				for y := range wi {
					hit = hit || x != y && math.Abs(wi[x].ts-wi[y].ts) <= 1
				}
			}
			if hit {
				want[1] = append(want[1], lines[i])
				wi = nil
			}
		}
	}
	t.Logf("FOLLOWEDBY hits at %v; WITHIN hits at %v", want[0], want[1])
	for i := range patterns {
		if len(want[i]) == 0 {
			t.Fatalf("the log no longer holds what the test expects for %s", patterns[i])
		}
		checkLines(t, patterns[i], got[indicatorN(i)], want[i])
	}
	if res.EvalErrors != 0 {
		t.Errorf("evaluation errors: %q", res.EvalProblems)
	}
}

// TestEvaluateZeekFiles evaluates file patterns (hashes, size, MIME type)
// and the transfer hosts of the real files.log.
func TestEvaluateZeekFiles(t *testing.T) {
	path := filepath.Join(testutil.SharedData(t, "logs", "zeek"), "slips-test10-mixed", "files.log")
	rows, lines, data := zeekRows(t, path)
	patterns := []string{
		"[file:hashes.MD5 = 'aeeb74a57c1f9df4cfc4536d26a38b8c' AND file:mime_type = 'application/x-x509-user-cert']",
		"[file:size > 1500 AND file:mime_type = 'application/x-x509-user-cert']",
		"[ipv4-addr:value = '3.232.121.231'] REPEATS 3 TIMES",
	}
	got, res := runPatterns(t, patterns, "files.log", data)
	var want [3][]int64
	n := 0
	for i, r := range rows {
		if r["md5"] == "aeeb74a57c1f9df4cfc4536d26a38b8c" && r["mime_type"] == "application/x-x509-user-cert" {
			want[0] = append(want[0], lines[i])
		}
		size, _ := strconv.Atoi(r["total_bytes"])
		if r["total_bytes"] == "-" {
			size, _ = strconv.Atoi(r["seen_bytes"])
		}
		if size > 1500 && r["mime_type"] == "application/x-x509-user-cert" && (r["md5"] != "-" || r["sha1"] != "-" || r["sha256"] != "-") {
			want[1] = append(want[1], lines[i])
		}
		if slices.Contains(strings.Split(r["tx_hosts"], ","), "3.232.121.231") || slices.Contains(strings.Split(r["rx_hosts"], ","), "3.232.121.231") {
			if n++; n == 3 {
				want[2] = append(want[2], lines[i])
				n = 0
			}
		}
	}
	for i := range patterns {
		if len(want[i]) == 0 {
			t.Fatalf("the log no longer holds what the test expects for %s", patterns[i])
		}
		checkLines(t, patterns[i], got[indicatorN(i)], want[i])
	}
	if res.EvalErrors != 0 {
		t.Errorf("evaluation errors: %q", res.EvalProblems)
	}
}

// TestEvaluateRequestTargets: indicators on an HTTP request target (as
// Maltrail's URL paths become) are anchored on the target, not evaluated
// on every record, and hit exactly the requests for that target in a real
// Zeek http.log.
func TestEvaluateRequestTargets(t *testing.T) {
	path := filepath.Join(testutil.SharedData(t, "logs", "zeek"), "slips-test9-mixed", "http.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The test's own reading: the uri and host of each request.
	type req struct {
		URI  string `json:"uri"`
		Host string `json:"host"`
	}
	var reqs []req
	var lines []int64
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		var r req
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("http.log:%d: %v", i+1, err)
		}
		reqs = append(reqs, r)
		lines = append(lines, int64(i+1))
	}
	var targets []string
	for _, r := range reqs {
		if r.Host != "" && !slices.Contains(targets, r.URI) && len(targets) < 5 {
			targets = append(targets, r.URI)
		}
	}
	if len(targets) < 3 {
		t.Fatalf("only %d distinct request targets", len(targets))
	}
	var patterns []string
	for _, u := range targets {
		q := strings.ReplaceAll(strings.ReplaceAll(u, `\`, `\\`), `'`, `\'`)
		patterns = append(patterns, "[network-traffic:extensions.'http-request-ext'.request_value = '"+q+"']")
	}
	patterns = append(patterns, "[network-traffic:extensions.'http-request-ext'.request_value = '/wpad.dat.not-requested']")

	ps := NewPatternSet()
	b := NewBuilder()
	b.CollectPatterns(ps)
	if _, err := LoadFile(b, "i.json", bytes.NewReader(indicatorBundle(patterns)), time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(ps.open) != 0 || len(ps.targets) != len(patterns) {
		t.Fatalf("%d patterns evaluated on every record, %d targets; want 0 and %d", len(ps.open), len(ps.targets), len(patterns))
	}
	got, _ := runPatterns(t, patterns, "http.log", data)
	for k, u := range targets {
		var want []int64
		for i, r := range reqs {
			if r.URI == u && r.Host != "" {
				want = append(want, lines[i])
			}
		}
		checkLines(t, u, got[indicatorN(k)], want)
	}
	if h := got[indicatorN(len(targets))]; len(h) != 0 {
		t.Errorf("a target never requested hit lines %v", h)
	}
}
