package stix

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/testutil"
)

var (
	attackOnce sync.Once
	attackData []byte
	attackErr  error
)

// attackBytes returns the decompressed ATT&CK Enterprise bundle.
func attackBytes(tb testing.TB) []byte {
	tb.Helper()
	path := attackPath(tb)
	attackOnce.Do(func() {
		f, err := os.Open(path)
		if err != nil {
			attackErr = err
			return
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			attackErr = err
			return
		}
		attackData, attackErr = io.ReadAll(zr)
	})
	if attackErr != nil {
		tb.Fatal(attackErr)
	}
	return attackData
}

func reportObjects(b *testing.B, objects int) {
	b.ReportMetric(float64(objects)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

// cpuTime returns the process's user+system CPU time, so that benchmarks
// can report CPU per operation, which a busy shared machine distorts
// less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU milliseconds per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkReadBundleATTACK splits the 50.7 MB ATT&CK bundle into its
// 24,772 objects (syntax-checking each) from an in-memory reader.
func BenchmarkReadBundleATTACK(b *testing.B) {
	data := attackBytes(b)
	b.SetBytes(int64(len(data)))
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		n = 0
		err := ReadBundle(bytes.NewReader(data), func(int, json.RawMessage) error { n++; return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
	reportObjects(b, n)
}

func attackObjects(b *testing.B) ([]json.RawMessage, int64) {
	var objs []json.RawMessage
	var size int64
	if err := ScanBundle(attackBytes(b), func(_ int, raw json.RawMessage) error {
		objs = append(objs, raw)
		size += int64(len(raw))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return objs, size
}

// BenchmarkDecodeATTACK decodes the common properties of every ATT&CK
// object on one goroutine.
func BenchmarkDecodeATTACK(b *testing.B) {
	objs, size := attackObjects(b)
	b.SetBytes(size)
	cpu0 := cpuTime()
	for b.Loop() {
		for _, raw := range objs {
			if _, err := Decode(raw); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportCPU(b, cpu0)
	reportObjects(b, len(objs))
}

// BenchmarkValidateATTACK validates every (already decoded) ATT&CK
// object on one goroutine.
func BenchmarkValidateATTACK(b *testing.B) {
	objs, size := attackObjects(b)
	decoded := make([]*Object, len(objs))
	for i, raw := range objs {
		o, err := Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		decoded[i] = o
	}
	b.SetBytes(size)
	cpu0 := cpuTime()
	for b.Loop() {
		for _, o := range decoded {
			if err := Validate(o); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportCPU(b, cpu0)
	reportObjects(b, len(objs))
}

// BenchmarkIngestATTACK is this package's share of ingesting the ATT&CK
// bundle: ReadBundle, then Decode and Validate of every object on
// GOMAXPROCS goroutines, as the node's ingest does.
func BenchmarkIngestATTACK(b *testing.B) {
	data := attackBytes(b)
	b.SetBytes(int64(len(data)))
	workers := runtime.GOMAXPROCS(0)
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		var objs []json.RawMessage
		if err := ReadBundle(bytes.NewReader(data), func(_ int, raw json.RawMessage) error {
			objs = append(objs, raw)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		n = len(objs)
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(objs); i += workers {
					o, err := Decode(objs[i])
					if err == nil {
						err = Validate(o)
					}
					if err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	reportCPU(b, cpu0)
	reportObjects(b, n)
}

// realIndicators builds n indicators from the shared blocklists (ThreatFox
// IPs, phishing domains, ESET SHA-256 sample hashes, in turn), with
// pattern_type pt, so that the pattern check's cost can be measured on
// the kind of indicators feeds and sensors post.
func realIndicators(b *testing.B, n int, pt string) ([]*Object, int64) {
	b.Helper()
	type src struct{ file, format string }
	srcs := []src{
		{"abusech-threatfox/ips.txt", "[ipv4-addr:value = '%s']"},
		{"phishing-database/phishing-domains-ACTIVE2.txt", "[domain-name:value = '%s']"},
		{"eset-hashes/turla__samples.sha256", "[file:hashes.'SHA-256' = '%s']"},
	}
	var values [][]string
	for _, s := range srcs {
		data, err := os.ReadFile(testutil.SharedData(b, append([]string{"blocklists"}, strings.Split(s.file, "/")...)...))
		if err != nil {
			b.Fatal(err)
		}
		var vs []string
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.ContainsAny(l, `'"\`) {
				vs = append(vs, l)
			}
		}
		if len(vs) == 0 {
			b.Fatalf("%s: no values", s.file)
		}
		values = append(values, vs)
	}
	out := make([]*Object, n)
	var size int64
	for i := range out {
		k := i % len(srcs)
		p := fmt.Sprintf(srcs[k].format, values[k][i/len(srcs)%len(values[k])])
		raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-%012x",`+
			`"created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","indicator_types":["malicious-activity"],`+
			`"pattern":%q,"pattern_type":%q,"valid_from":"2024-01-01T00:00:00Z"}`, i, p, pt)
		o, err := Decode(json.RawMessage(raw))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = o
		size += int64(len(raw))
	}
	return out, size
}

// BenchmarkValidateIndicators validates 30,000 indicators made from real
// blocklist values on one goroutine, with the STIX pattern parsed and
// checked (pattern_type "stix") and without (the same objects with
// pattern_type "x-unparsed", which Validate does not parse); the
// difference of the two ns/object figures is the pattern check's cost
// per indicator.
func BenchmarkValidateIndicators(b *testing.B) {
	for _, tc := range []struct{ name, pt string }{{"pattern-checked", "stix"}, {"unchecked", "x-unparsed"}} {
		b.Run(tc.name, func(b *testing.B) {
			objs, size := realIndicators(b, 30000, tc.pt)
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				for _, o := range objs {
					if err := Validate(o); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu0)
			reportObjects(b, len(objs))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(objs)), "ns/object")
		})
	}
}
