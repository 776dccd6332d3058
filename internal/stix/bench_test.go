package stix

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
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
