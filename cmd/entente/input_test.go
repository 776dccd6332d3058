package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

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
