package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/entente-cti/entente/internal/taxii"
	"github.com/entente-cti/entente/internal/testutil"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// allocated runs fn and returns the bytes it allocated on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestIngestNeverTrustsGzip covers issue 16's D1: gzip input whose
// declared size lies, that is truncated, or that inflates like a bomb is
// refused at once with an error naming the file, in bounded memory, and
// nothing is stored.
func TestIngestNeverTrustsGzip(t *testing.T) {
	attack, err := os.ReadFile(testutil.SharedData(t, "attack", "enterprise-attack-18.1.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := gzipped(t, []byte(`{"type":"bundle","objects":[]}`))
	lying := append([]byte{}, small...)
	binary.LittleEndian.PutUint32(lying[len(lying)-4:], 0xfffffff0) // "4 GB"
	member := gzipped(t, make([]byte, 8<<20))
	bomb := bytes.Repeat(member, 512) // 4 GiB of zeros in about 4 MB

	tests := []struct {
		name, file string
		data       []byte
		args       []string
		want       string
	}{
		{"truncated ATT&CK", "attack-3mb.json.gz", attack[:3<<20], nil, "attack-3mb.json.gz: gzip stream broken after"},
		{"lying size trailer", "claims-4gb.json.gz", lying, nil, "claims-4gb.json.gz: gzip stream broken after"},
		{"multi-member bomb", "bomb.json.gz", bomb, nil, "bomb.json.gz: decompresses to more than 200 times its size"},
		{"over --max-size", "attack.json.gz", attack, []string{"--max-size", "10MiB"}, "attack.json.gz: decompresses to more than 10485760 bytes"},
	}
	dir := t.TempDir()
	initNode(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(tt.file, tt.data)
			var code int
			var errs string
			alloc := allocated(func() {
				code, _, errs = run(t, nil, nil, append(append([]string{"ingest", "--data", dir}, tt.args...), path)...)
			})
			if code != 1 || !strings.Contains(errs, tt.want) || !strings.Contains(errs, "stored 0 objects") {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tt.want, errs)
			}
			// Before the fix the lying trailer reserved 4 GB and the
			// bomb inflated to 4 GiB.
			if alloc > 256<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

// TestIngestPointsToImport: feeds that are not STIX get a hint to use
// import, not a schema dump (issue 14, item 3).
func TestIngestPointsToImport(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	tests := []struct {
		path []string
		want string
	}{
		{[]string{"misp", "events", "pymisp-qakbot.json"}, "this is a MISP event, not a STIX bundle: use 'entente import'"},
		{[]string{"misp", "feed-misp", "manifest.json"}, "this is a MISP feed's manifest.json (import its directory), not a STIX bundle"},
		{[]string{"misp", "feed-csv", "feed.csv"}, "this is a plain list of values, not a STIX bundle: use 'entente import'"},
		{[]string{"blocklists", "abusech-threatfox", "ips.txt"}, "this is a plain list of values, not a STIX bundle: use 'entente import'"},
		{[]string{"misp", "feed-misp"}, "is a directory: ingest reads STIX bundle files (a MISP feed directory goes to 'entente import')"},
	}
	for _, tt := range tests {
		t.Run(filepath.Join(tt.path...), func(t *testing.T) {
			p := testutil.SharedData(t, tt.path...)
			code, _, errs := run(t, nil, nil, "ingest", "--data", dir, p)
			if code != 1 || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tt.want, errs)
			}
			if strings.Contains(errs, "custom property") || strings.Contains(errs, "required") {
				t.Fatalf("schema dump instead of a hint:\n%s", errs)
			}
		})
	}
	csv := filepath.Join(t.TempDir(), "urlhaus.csv")
	if err := os.WriteFile(csv, []byte("# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n"+
		`"1","2026-01-01 00:00:00","http://evil.example/a","online","","malware_download","elf","https://urlhaus.abuse.ch/url/1/","x"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, nil, nil, "ingest", "--data", dir, csv); code != 1 || !strings.Contains(errs, "this is a CSV feed, not a STIX bundle: use 'entente import'") {
		t.Fatalf("CSV: exit %d:\n%s", code, errs)
	}
	// A real STIX bundle still goes in.
	code, _, errs := run(t, nil, nil, "ingest", "--data", dir, testutil.SharedData(t, "attack", "ics-attack-18.1.json"))
	if code != 0 || !strings.Contains(errs, "rejected 0") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// TestMatchIndicatorsGzip: match --indicators reads .json.gz bundles, and
// a truncated one is an error, not a plain list of garbage (issue 16).
func TestMatchIndicatorsGzip(t *testing.T) {
	tmp := t.TempDir()
	bundle := []byte(`{"type":"bundle","id":"bundle--0b1c7a4e-5b0e-4d52-9f1e-3a1e0d2c9b13","objects":[` +
		`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`)
	gz := gzipped(t, bundle)
	files := map[string][]byte{
		"intel.json.gz":     gz,
		"truncated.json.gz": gz[:len(gz)/2],
		"binary.bin":        {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0},
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	log := "{\"src_ip\":\"10.0.0.1\",\"dest_ip\":\"198.51.100.7\",\"event_type\":\"flow\",\"timestamp\":\"2026-01-02T00:00:00.000000+0000\"}\n"
	code, out, errs := run(t, nil, strings.NewReader(log), "match", "--config", safetyOff(t), "--indicators", filepath.Join(tmp, "intel.json.gz"))
	if code != 0 || !strings.Contains(out, "198.51.100.7") || !strings.Contains(errs, "1 values (1 STIX indicators") {
		t.Fatalf("gzip bundle: exit %d\n%s\n%s", code, out, errs)
	}
	for name, want := range map[string]string{
		"truncated.json.gz": "truncated.json.gz: gzip stream broken",
		"binary.bin":        "binary.bin: a binary file",
	} {
		code, _, errs := run(t, nil, strings.NewReader(log), "match", "--config", safetyOff(t), "--indicators", filepath.Join(tmp, name))
		if code != 1 || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d, want 1 and %q:\n%s", name, code, want, errs)
		}
	}
}

// TestReadAllHuge reads inputs across the buffer's doublings, from
// readers that hand out little at a time, whatever the size hint, and
// passes a read error on.
func TestReadAllHuge(t *testing.T) {
	data := make([]byte, 5<<20+7) // past 2 MiB: huge-page advice applies
	for i := range data {
		data[i] = byte(i * 7 % 251)
	}
	tests := []struct {
		name string
		size int
		hint int
	}{
		{"empty", 0, 0},
		{"empty with a hint", 0, 1 << 20},
		{"small, no hint", 100, 0},
		{"first buffer exactly", 64 << 10, 0},
		{"one past the first buffer", 64<<10 + 1, 0},
		{"large, no hint", len(data), 0},
		{"large, exact hint", len(data), len(data)},
		{"large, hint too small", len(data), 1 << 20},
		{"large, hint too large", len(data), 2 * len(data)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAllHuge(iotest.HalfReader(bytes.NewReader(data[:tt.size])), tt.hint)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data[:tt.size]) {
				t.Fatalf("read %d bytes, not the %d written", len(got), tt.size)
			}
			if cap(got) != len(got) {
				t.Errorf("capacity %d past the %d bytes read: appending would write into the buffer", cap(got), len(got))
			}
		})
	}
	broken := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(data[:3<<20]), iotest.ErrReader(broken))
	if _, err := readAllHuge(r, 0); !errors.Is(err, broken) {
		t.Fatalf("error %v, want %v", err, broken)
	}
}

// TestIngestOfflineBatches ingests, offline, more objects than fit in
// two batches, with bad ones at the edges of batches: every valid object
// is stored, every bad one rejected and named, in file order, though
// later batches are handed over while earlier ones are still in the node.
func TestIngestOfflineBatches(t *testing.T) {
	const n = 2*ingestBatch + 2001
	bad := map[int]string{ // position: what is wrong
		0:                 "id",
		ingestBatch - 1:   "id",
		ingestBatch:       "type", // fails to decode: rejected before validation
		2*ingestBatch - 1: "id",
		2 * ingestBatch:   "type",
		n - 1:             "id",
	}
	var b strings.Builder
	b.WriteString(`{"type":"bundle","id":"bundle--0b1c7a4e-5b0e-4d52-9f1e-3a1e0d2c9b19","objects":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012x", i)
		typ := `"indicator"`
		switch bad[i] {
		case "id":
			id = fmt.Sprintf("indicator--not-a-uuid-%d", i)
		case "type":
			typ = "5"
		}
		fmt.Fprintf(&b, `{"type":%s,"spec_version":"2.1","id":"%s","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.2.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
			typ, id, i>>8&255, i&255)
	}
	b.WriteString("]}")
	path := filepath.Join(t.TempDir(), "batches.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	initNode(t, dir)
	code, _, errs := run(t, nil, nil, "ingest", "--quiet", "--data", dir, path)
	want := fmt.Sprintf("stored %d objects, rejected %d,", n-len(bad), len(bad))
	if code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("exit %d, want 1 and %q:\n%s", code, want, errs)
	}
	// Each rejection is named, in file order.
	at := 0
	for _, i := range []int{0, ingestBatch - 1, 2*ingestBatch - 1, n - 1} {
		line := fmt.Sprintf("rejected %s indicator--not-a-uuid-%d:", path, i)
		k := strings.Index(errs[at:], line)
		if k < 0 {
			t.Fatalf("summary lacks %q after byte %d:\n%s", line, at, errs)
		}
		at += k + len(line)
	}
	if got := strings.Count(errs, "rejected "+path+" (no id)") + strings.Count(errs, "rejected "+path+" indicator--00000000-0000-4000-8000-"); got != 2 {
		t.Errorf("%d rejections of the undecodable objects, want 2:\n%s", got, errs)
	}
}

// TestCompletions hands a status to its waiter whether it completes
// before or after the wait begins, and gives up when the wait's context
// ends.
func TestCompletions(t *testing.T) {
	c := newCompletions()
	early := &taxii.Status{ID: "early", Status: taxii.StatusComplete, SuccessCount: 1}
	c.complete(early)
	c.complete(early) // told twice: never blocks the node's writer
	if st, err := c.wait(t.Context(), "early"); err != nil || st != early {
		t.Fatalf("early: %v, %v", st, err)
	}
	late := &taxii.Status{ID: "late", Status: taxii.StatusComplete, SuccessCount: 2}
	go func() {
		time.Sleep(10 * time.Millisecond)
		c.complete(late)
	}()
	if st, err := c.wait(t.Context(), "late"); err != nil || st != late {
		t.Fatalf("late: %v, %v", st, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.wait(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("never: %v", err)
	}
}
