package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/entente-cti/entente/internal/testutil"
)

var (
	attackOnce sync.Once
	attackObjs []json.RawMessage
)

// attackEnvelope returns an envelope of the real ATT&CK Enterprise
// objects, in bundle order, as large as fits in size bytes.
func attackEnvelope(tb testing.TB, size int) ([]byte, int) {
	tb.Helper()
	attackOnce.Do(func() {
		f, err := os.Open(testutil.SharedData(tb, "attack", "enterprise-attack-18.1.json.gz"))
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			tb.Fatal(err)
		}
		if err := stix.ScanBundle(data, func(_ int, raw json.RawMessage) error {
			attackObjs = append(attackObjs, raw)
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
	})
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"objects":[`)
	n := 0
	for _, o := range attackObjs {
		if b.Len()+len(o)+3 > size {
			break
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(o)
		n++
	}
	b.WriteString(`]}`)
	return b.Bytes(), n
}

// heapAllocs reads the bytes allocated on the heap so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapInUse reads the bytes of heap spans in use (Go's HeapInuse)
// without stopping the world.
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// peakHeap samples heapInUse every half millisecond until stop is
// closed, and returns the highest figure.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		t := time.NewTicker(500 * time.Microsecond)
		defer t.Stop()
		for {
			peak = max(peak, heapInUse())
			select {
			case <-stop:
				out <- max(peak, heapInUse())
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// postLarge posts body to the shared collection as the analyst and
// waits for its status to be complete, returning the final status. It
// asks the node for the status in-process, every 50 ms, so that the
// client's decoding of large pending statuses is not counted with the
// server's memory.
func postLarge(tb testing.TB, e *env, body []byte) *taxii.Status {
	tb.Helper()
	r := e.do(req{method: "POST", path: e.objectsURL(e.colls.shared), key: e.keys[entente.RoleAnalyst], body: body})
	if r.status != http.StatusAccepted {
		tb.Fatalf("POST: %d %.300s", r.status, r.body)
	}
	var id struct{ ID string }
	r.json(tb, &id)
	p := entente.Principal{KeyID: e.ids[entente.RoleAnalyst], Org: org, Role: entente.RoleAnalyst}
	for i := 0; ; i++ {
		st, err := e.svc.Status(context.Background(), p, id.ID)
		if err != nil {
			tb.Fatal(err)
		}
		if st.Status == taxii.StatusComplete {
			return st
		}
		if i == 1200 {
			tb.Fatalf("status %s still pending after a minute", id.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// largeEnvelopeMemory posts a 32 MB envelope of ATT&CK objects through
// the real handler to the SQLite store and returns the peak heap in use
// above the baseline while it was read, validated and stored, and the
// heap still in use once the status was complete and a collection ran,
// both as multiples of the body's size.
func largeEnvelopeMemory(tb testing.TB, gcPercent int, pressure bool, content string) (peak, retained, allocated float64, objects int) {
	tb.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	e := newEnv(tb, func(c *node.Config, o *httpapi.Options) {
		c.MaxContentLength = 32 << 20
		if pressure {
			// As serve does (cmd/entente bodyPressure).
			o.BodyPressure = func(high bool) {
				if high {
					debug.SetGCPercent(100)
				} else {
					debug.SetGCPercent(gcPercent)
				}
			}
		}
	})
	var body []byte
	var n int
	if content == "attack" {
		body, n = attackEnvelope(tb, 32<<20)
	} else {
		body, n = indicatorEnvelope(32 << 20)
	}
	runtime.GC()
	runtime.GC()
	base, allocs := heapInUse(), heapAllocs()
	stop := make(chan struct{})
	got := peakHeap(stop)
	st := postLarge(tb, e, body)
	close(stop)
	p := <-got
	allocs = heapAllocs() - allocs
	if st.SuccessCount != n {
		tb.Fatalf("%d of %d objects stored: %+v", st.SuccessCount, n, st.Failures[:min(3, len(st.Failures))])
	}
	runtime.GC()
	after := heapInUse()
	size := float64(len(body))
	return float64(p-min(p, base)) / size, float64(after-min(after, base)) / size, float64(allocs) / size, n
}

// BenchmarkPostEnvelope32MB posts an envelope of 32 MiB of real ATT&CK
// objects (14,102), and one of as many small indicators as fit (77,100),
// through the handler to the SQLite store, and reports the peak heap in
// use above the baseline while the body is read, validated and stored,
// as a multiple of the body's size (peak-x), the bytes allocated meanwhile
// (alloc-x) and what is still in use once the status is complete and a
// collection ran (retained-x). The collector runs at Go's default
// (gc100), as `entente serve` sets it (gc400), and as serve runs it
// while large bodies are decoded (gc400-pressure: the body memory
// budget's pressure hook lowers it to 100).
func BenchmarkPostEnvelope32MB(b *testing.B) {
	for _, content := range []string{"attack", "indicators"} {
		for _, gc := range []string{"gc100", "gc400", "gc400-pressure"} {
			b.Run(content+"/"+gc, func(b *testing.B) {
				var peak, retained, allocated float64
				var n int
				percent := 100
				if gc != "gc100" {
					percent = 400
				}
				for b.Loop() {
					peak, retained, allocated, n = largeEnvelopeMemory(b, percent, gc == "gc400-pressure", content)
				}
				b.ReportMetric(peak, "peak-x")
				b.ReportMetric(allocated, "alloc-x")
				b.ReportMetric(retained, "retained-x")
				b.ReportMetric(float64(n), "objects")
			})
		}
	}
}

// indicatorEnvelope returns an envelope of distinct indicators shaped
// like the taxii-load workload's, as many as fit in size bytes.
func indicatorEnvelope(size int) ([]byte, int) {
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"objects":[`)
	n := 0
	for batch := 0; ; batch++ {
		env := benchEnvelope(batch)
		objs := env[len(`{"objects":[`) : len(env)-2]
		if b.Len()+len(objs)+3 > size {
			break
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(objs)
		n += 100
	}
	b.WriteString(`]}`)
	return b.Bytes(), n
}
