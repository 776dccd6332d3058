package sensor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/testutil"
)

// collected is one line's observables, as strings, for comparison.
type collected struct {
	File string
	Line int64
	Obs  string
}

type collector struct {
	mu    *sync.Mutex
	lines *[]collected
}

func (c collector) Line(ch *Chunk, line int64, raw []byte, obs []Obs, p Parser) {
	var b strings.Builder
	for _, o := range obs {
		fmt.Fprintf(&b, "%s=%s", o.Kind, o.Value)
		if o.Aux != nil {
			fmt.Fprintf(&b, "|%s", o.Aux)
		}
		b.WriteByte('\x1f')
	}
	c.mu.Lock()
	*c.lines = append(*c.lines, collected{ch.File, line, b.String()})
	c.mu.Unlock()
}

func (collector) ChunkDone(*Chunk) {}

func scanAll(t testing.TB, inputs []Input, opts Options) ([]collected, Stats, error) {
	var mu sync.Mutex
	var lines []collected
	st, err := Scan(context.Background(), inputs, opts, func(int) Handler { return collector{&mu, &lines} })
	sort.Slice(lines, func(i, j int) bool {
		if lines[i].File != lines[j].File {
			return lines[i].File < lines[j].File
		}
		return lines[i].Line < lines[j].Line
	})
	return lines, st, err
}

func fileInput(path string) Input {
	return Input{Name: path, Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

func bytesInput(name string, data []byte) Input {
	return Input{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

func readMaybeGzip(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

// kindCounts counts observables per kind name.
func kindCounts(lines []collected) map[string]int {
	m := map[string]int{}
	for _, l := range lines {
		for _, f := range strings.Split(strings.TrimSuffix(l.Obs, "\x1f"), "\x1f") {
			k, _, _ := strings.Cut(f, "=")
			m[k]++
		}
	}
	return m
}

// naiveZeekTSV counts, with plain string splitting, the records and the
// observables a Zeek TSV log should yield.
func naiveZeekTSV(data []byte) (records int, counts map[string]int) {
	counts = map[string]int{}
	var fields []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimLeft(line, " \t")
		if strings.HasPrefix(line, "#fields\t") {
			fields = strings.Split(line, "\t")[1:]
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		cols := strings.Split(line, "\t")
		n := 0
		host, uri := false, false
		for i, name := range fields {
			k, ok := zeekFields[name]
			if !ok || i >= len(cols) || cols[i] == "-" || cols[i] == "(empty)" || cols[i] == "" {
				continue
			}
			switch k {
			case obsURI:
				uri = true
			case ObsHost:
				host = true
				counts[k.String()]++
				n++
			default:
				for _, v := range strings.Split(cols[i], ",") {
					if v != "" {
						counts[k.String()]++
						n++
					}
				}
			}
		}
		if host && uri {
			counts["url"]++
		}
		if n > 0 || (host && uri) {
			records++
		}
	}
	return records, counts
}

// walkJSON counts the observables of a decoded JSON value along spec.
func walkJSON(v any, node *specNode, counts map[string]int) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if c := node.child([]byte(k)); c != nil {
				walkJSON(val, c, counts)
			}
		}
	case []any:
		for _, e := range x {
			walkJSON(e, node, counts)
		}
	case string:
		if node.kind != 0 && x != "" {
			counts[node.kind.String()]++
			if node.kind == obsURI && strings.Contains(x, "://") {
				counts["absolute"]++
			}
		}
	}
}

func naiveJSON(t *testing.T, data []byte, f *jsonFormat) (records int, counts map[string]int) {
	counts = map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("reference decoder: %v", err)
		}
		c := map[string]int{}
		walkJSON(v, f.root, c)
		total := 0
		for k, n := range c {
			if k == "invalid" || k == "absolute" { // obsURI
				continue
			}
			counts[k] += n
			total += n
		}
		if c["invalid"] > 0 && (c["host"] > 0 || c["absolute"] > 0) {
			counts["url"]++
		}
		if total > 0 {
			records++
		}
	}
	return records, counts
}

func TestRealZeekTSV(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek")
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "tsv", "*.log.gz"))
	more, _ := filepath.Glob(filepath.Join(dir, "slips-test10-mixed", "*.log"))
	paths = append(paths, more...)
	checked := 0
	for _, p := range paths {
		data := readMaybeGzip(t, p)
		if !bytes.HasPrefix(bytes.TrimLeft(data, " \t"), []byte("#separator")) {
			continue
		}
		checked++
		t.Run(filepath.Base(p), func(t *testing.T) {
			wantRecords, wantCounts := naiveZeekTSV(data)
			lines, st, err := scanAll(t, []Input{fileInput(p)}, Options{ChunkSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if st.Bad != 0 {
				t.Errorf("%d bad lines: %v", st.Bad, st.BadLines)
			}
			if got := len(lines); got != wantRecords {
				t.Errorf("records = %d, want %d", got, wantRecords)
			}
			if diff := cmp.Diff(wantCounts, kindCounts(lines)); diff != "" {
				t.Errorf("observable counts (-want +got):\n%s", diff)
			}
			want := int64(bytes.Count(data, []byte("\n")))
			if len(data) > 0 && data[len(data)-1] != '\n' {
				want++ // a last line without a newline
			}
			if st.Lines != want {
				t.Errorf("lines = %d, want %d", st.Lines, want)
			}
		})
	}
	if checked < 5 {
		t.Fatalf("only %d Zeek TSV logs found under %s", checked, dir)
	}
}

func TestRealZeekJSONAndEVE(t *testing.T) {
	zeek := testutil.SharedData(t, "logs", "zeek")
	eve := testutil.SharedData(t, "logs", "suricata")
	var paths []string
	for _, g := range []string{filepath.Join(zeek, "*", "json", "*.gz"), filepath.Join(zeek, "slips-test9-mixed", "*.log"), filepath.Join(eve, "*", "eve.json.gz")} {
		m, _ := filepath.Glob(g)
		paths = append(paths, m...)
	}
	formats := map[string]int{}
	for _, p := range paths {
		data := readMaybeGzip(t, p)
		f, err := Detect(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		formats[f.Name()]++
		t.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), func(t *testing.T) {
			wantRecords, wantCounts := naiveJSON(t, data, f.(*jsonFormat))
			lines, st, err := scanAll(t, []Input{fileInput(p)}, Options{ChunkSize: 32 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if st.Bad != 0 {
				t.Errorf("%d bad lines: %v", st.Bad, st.BadLines)
			}
			if got := len(lines); got != wantRecords {
				t.Errorf("records = %d, want %d", got, wantRecords)
			}
			if diff := cmp.Diff(wantCounts, kindCounts(lines)); diff != "" {
				t.Errorf("observable counts (-want +got):\n%s", diff)
			}
		})
	}
	if formats["eve"] == 0 || formats["zeek-json"] < 5 {
		t.Fatalf("formats found: %v", formats)
	}
}

func TestEVEFields(t *testing.T) {
	line := `{"timestamp":"2021-06-06T16:26:27.431769+0200","event_type":"http","src_ip":"192.168.1.129","dest_ip":"2001:db8::1","http":{"hostname":"Evil.COM","url":"\/a\/b?x=\u0031","http_user_agent":"x\"y"},"dns":{"queries":[{"rrname":"q.example"}],"answers":[{"rrname":"q.example","rdata":"1.2.3.4"}],"grouped":{"A":["5.6.7.8"]}},"fileinfo":{"sha256":"` + strings.Repeat("a", 64) + `"}}`
	p := EVE.NewParser()
	obs, err := p.Parse([]byte(line), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range obs {
		s := o.Kind.String() + "=" + string(o.Value)
		if o.Aux != nil {
			s += "|" + string(o.Aux)
		}
		got = append(got, s)
	}
	want := []string{"ip=192.168.1.129", "ip=2001:db8::1", "host=Evil.COM", "domain=q.example", "domain=q.example", "any=1.2.3.4", "ip=5.6.7.8", "hash=" + strings.Repeat("a", 64), "url=Evil.COM|/a/b?x=1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observables (-want +got):\n%s", diff)
	}
	ts, ok := p.Time([]byte(line))
	if !ok || ts.Format("2006-01-02T15:04:05Z07:00") != "2021-06-06T14:26:27Z" {
		t.Errorf("Time = %v, %v", ts, ok)
	}
}

func TestBadLinesCounted(t *testing.T) {
	good := `{"event_type":"dns","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","dns":{"rrname":"a.example"}}`
	lines := []string{good, `{"event_type":"dns","src_ip":"10.0.0.1"`, "\x00\xff\xfe garbage", good, `{"src_ip":["unterminated}`, good, "[1,2]", good}
	data := []byte(strings.Join(lines, "\n") + "\n")
	got, st, err := scanAll(t, []Input{bytesInput("corrupt.json", data)}, Options{Format: EVE})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Errorf("records = %d, want 4", len(got))
	}
	var badAt []string
	for _, b := range st.BadLines {
		badAt = append(badAt, fmt.Sprintf("%s:%d", b.File, b.Line))
	}
	if diff := cmp.Diff([]string{"corrupt.json:2", "corrupt.json:3", "corrupt.json:5", "corrupt.json:7"}, badAt); diff != "" {
		t.Errorf("bad lines (-want +got):\n%s", diff)
	}
	if st.Bad != 4 || st.Lines != 8 {
		t.Errorf("bad = %d, lines = %d; want 4, 8", st.Bad, st.Lines)
	}
}

func TestEnormousLine(t *testing.T) {
	good := `{"event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.2"}`
	huge := `{"event_type":"flow","src_ip":"` + strings.Repeat("9", 300<<10) + `"}`
	data := []byte(good + "\n" + huge + "\n" + good + "\n" + huge + "\n" + good)
	for _, cs := range []int{64 << 10, 1 << 20} {
		got, st, err := scanAll(t, []Input{bytesInput("huge.json", data)}, Options{Format: EVE, ChunkSize: cs, MaxLineSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || st.Bad != 2 || got[2].Line != 5 {
			t.Errorf("chunk %d: records %v, bad %d (%v); want 3 records (last on line 5), 2 bad", cs, got, st.Bad, st.BadLines)
		}
		for _, b := range st.BadLines {
			if !errors.Is(b.Err, ErrTooLong) || (b.Line != 2 && b.Line != 4) {
				t.Errorf("chunk %d: bad line %v, want line 2 or 4 too long", cs, b)
			}
		}
	}
}

func TestTruncatedGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(zw, `{"event_type":"flow","src_ip":"10.0.%d.%d","dest_ip":"10.1.0.1"}`+"\n", i/256, i%256)
	}
	zw.Close()
	trunc := buf.Bytes()[:buf.Len()/2]
	got, _, err := scanAll(t, []Input{bytesInput("cut.json.gz", trunc), bytesInput("whole.json.gz", buf.Bytes())}, Options{})
	if err == nil || !strings.Contains(err.Error(), "cut.json.gz") {
		t.Fatalf("error = %v, want one naming cut.json.gz", err)
	}
	whole := 0
	for _, l := range got {
		if l.File == "whole.json.gz" {
			whole++
		}
	}
	if whole != 5000 {
		t.Errorf("records of the intact file = %d, want 5000", whole)
	}
}

func TestUnknownFormat(t *testing.T) {
	for _, data := range []string{"hello world\n", `{"a":1}` + "\n", "\x00\x01\x02"} {
		_, _, err := scanAll(t, []Input{bytesInput("x.log", []byte(data))}, Options{})
		if err == nil || !strings.Contains(err.Error(), "x.log") {
			t.Errorf("%q: error = %v, want one naming x.log", data, err)
		}
	}
}

func TestZeekHeaderAcrossChunks(t *testing.T) {
	hdr := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\n#types\ttime\tstring\taddr\tport\taddr\n"
	hdr2 := strings.Replace(hdr, "ts\tuid\tid.orig_h", "ts\tid.orig_h\tuid", 1)
	var b strings.Builder
	b.WriteString(hdr)
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "1.0\tC%d\t10.0.0.%d\t1\t10.9.9.9\n", i, i%250)
	}
	b.WriteString("#close\t2020\n")
	b.WriteString(hdr2)
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "1.0\t10.1.0.%d\tC%d\t1\t10.8.8.8\n", i%250, i)
	}
	small, st1, err1 := scanAll(t, []Input{bytesInput("c.log", []byte(b.String()))}, Options{ChunkSize: 512, MaxLineSize: 512})
	big, st2, err2 := scanAll(t, []Input{bytesInput("c.log", []byte(b.String()))}, Options{})
	if err1 != nil || err2 != nil || st1.Bad != 0 || st2.Bad != 0 {
		t.Fatalf("errors %v %v, bad %d %d", err1, err2, st1.Bad, st2.Bad)
	}
	if len(big) != 600 {
		t.Fatalf("records = %d, want 600", len(big))
	}
	if diff := cmp.Diff(big, small); diff != "" {
		t.Errorf("small chunks differ (-big +small):\n%s", diff)
	}
	if !strings.Contains(big[599].Obs, "ip=10.1.0.49\x1fip=10.8.8.8") {
		t.Errorf("last record %v", big[599])
	}
}

func TestJSONLines(t *testing.T) {
	f, err := JSONLines("src=ip,req.host=domain,req.full=url,file.h=hash", "time")
	if err != nil {
		t.Fatal(err)
	}
	p := f.NewParser()
	obs, err := p.Parse([]byte(`{"time":"2024-01-02T03:04:05Z","src":"1.2.3.4","req":{"host":"a.example","full":"https://a.example/x"},"file":{"h":"abc"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 4 || obs[3].Kind != ObsURL || string(obs[3].Aux) != "https://a.example/x" {
		t.Errorf("obs = %+v", obs)
	}
	if _, err := JSONLines("src=bogus", ""); err == nil {
		t.Error("unknown kind accepted")
	}
}

// chunkInvariance checks that a scan gives the same records and bad lines
// whatever the chunk size.
func chunkInvariance(t *testing.T, f Format, data []byte) {
	opts := Options{Format: f, MaxLineSize: 256, ChunkSize: 256, Workers: 2}
	a, sa, _ := scanAll(t, []Input{bytesInput("f", data)}, opts)
	opts.ChunkSize = 1 << 16
	b, sb, _ := scanAll(t, []Input{bytesInput("f", data)}, opts)
	if diff := cmp.Diff(b, a); diff != "" {
		t.Fatalf("chunk size changes the records (-big +small):\n%s", diff)
	}
	if sa.Bad != sb.Bad || sa.Lines != sb.Lines {
		t.Fatalf("bad %d/%d lines %d/%d", sa.Bad, sb.Bad, sa.Lines, sb.Lines)
	}
	for _, l := range b {
		if strings.Contains(l.Obs, "=\x1f") {
			t.Fatalf("empty observable in %v", l)
		}
	}
}

func FuzzZeekTSV(f *testing.F) {
	f.Add([]byte("#separator \\x09\n#set_separator\t,\n#fields\tts\tid.orig_h\tquery\tanswers\thost\turi\n1.0\t1.2.3.4\tevil.com\ta.b,1.2.3.4\tx.com\t/p\n"))
	f.Add([]byte("#fields\tid.resp_h\n-\n(empty)\n\n#separator \\x2c\n#fields,host,uri\nh,/u\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		chunkInvariance(t, ZeekTSV, data)
		recordAgrees(t, ZeekTSV, data)
	})
}

func FuzzZeekJSON(f *testing.F) {
	f.Add([]byte(`{"ts":1.5,"id.orig_h":"1.2.3.4","query":"a.b","answers":["x","1.1.1.1"],"host":"h","uri":"/u"}` + "\n"))
	f.Add([]byte(`{"id.resp_h":"\u0031.2.3.4","tx_hosts":[]}` + "\n{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		chunkInvariance(t, ZeekJSON, data)
		recordAgrees(t, ZeekJSON, data)
	})
}

func FuzzEVE(f *testing.F) {
	f.Add([]byte(`{"event_type":"dns","src_ip":"1.2.3.4","dns":{"queries":[{"rrname":"a.b"}],"grouped":{"A":["1.1.1.1"]}}}` + "\n"))
	f.Add([]byte(`{"http":{"hostname":"h","url":"\/x\ud83d\ude00"},"tls":{"sni":"s"},"fileinfo":{"md5":"00"}}` + "\n[]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		chunkInvariance(t, EVE, data)
		recordAgrees(t, EVE, data)
	})
}

func FuzzJSONL(f *testing.F) {
	jf, err := JSONLines("a=ip,b.c=domain,d=url,e=email,g=hash,h=any", "t")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"a":"1.2.3.4","b":{"c":"x.y"},"d":"http://x/y","e":"A <a@b.c>","t":1700000000}` + "\n"))
	f.Add([]byte(`{"b":[{"c":["q"]}],"h":null}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		chunkInvariance(t, jf, data)
		recordAgrees(t, jf, data)
	})
}

// recordAgrees parses data line by line and decodes every line that has
// observables as a record: decoding must not panic, and for Zeek TSV it
// must succeed and hold every observed value (as a field or an element
// of a set field).
func recordAgrees(t *testing.T, f Format, data []byte) {
	p := f.NewParser()
	rp, ok := p.(Recorder)
	if !ok {
		t.Fatalf("%s parser is not a Recorder", f.Name())
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		obs, err := p.Parse(l, nil)
		if err != nil || len(obs) == 0 {
			continue
		}
		rec, err := rp.Record(l)
		if f != ZeekTSV {
			continue
		}
		if err != nil {
			t.Fatalf("line %q: parsed but not decoded: %v", l, err)
		}
		for _, o := range obs {
			if o.Kind == ObsURL {
				continue // joined from two fields
			}
			found := false
			for _, v := range rec {
				s := v.(string)
				if s == string(o.Value) || slices.Contains(strings.Split(s, string(rp.SetSeparator())), string(o.Value)) {
					found = true
				}
			}
			if !found {
				t.Fatalf("line %q: observed %q is in no field of the record %v", l, o.Value, rec)
			}
		}
	}
}

// TestLongLineThenSplitLine: a line longer than a block is skipped as a
// bad line, and the line after it, which the next block boundary cuts,
// is still read whole, with the right number.
func TestLongLineThenSplitLine(t *testing.T) {
	for _, tail := range []int{0, 100, 250} {
		long := bytes.Repeat([]byte("x"), 256+tail)
		good := []byte(`{"event_type":"flow","src_ip":"192.0.2.7","pad":"` + strings.Repeat("p", 200) + `"}`)
		data := append(append(append(long, '\n'), good...), '\n')
		_, st, err := scanAll(t, []Input{bytesInput("f", data)}, Options{Format: EVE, ChunkSize: 256, MaxLineSize: 256, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if st.Lines != 2 || st.Bad != 1 || st.Records != 1 || len(st.BadLines) != 1 || st.BadLines[0].Line != 1 {
			t.Errorf("tail %d: %+v, want 2 lines, line 1 bad, 1 record", tail, st)
		}
	}
}
