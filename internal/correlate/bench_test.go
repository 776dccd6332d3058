package correlate_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/correlate"
)

// feed is a synthetic federation: 10,000 threats sighted by 300
// organisations in 78 countries, a million sightings per simulated minute,
// with the corroboration rules on: each organisation's sightings are
// vouched for by its country's CERT (78 sources at home in their
// countries, under a quota) and name the indicator sighted.
type feed struct {
	threats    []correlate.ThreatKey
	indicators []string
	orgs       []string
	ccs        []string
	rng        *rand.Rand
	now        time.Time
	n          int
}

func newFeed() *feed {
	f := &feed{rng: rand.New(rand.NewPCG(1, 2)), now: t0}
	for i := range 10000 {
		f.threats = append(f.threats, correlate.ThreatKey(fmt.Sprintf("malware--%08d-0000-4000-8000-000000000000", i)))
		f.indicators = append(f.indicators, fmt.Sprintf("indicator--%08d-0000-4000-8000-000000000000", i))
	}
	for i := range 300 {
		f.orgs = append(f.orgs, fmt.Sprintf("identity--%08d-0000-4000-8000-000000000000", i))
	}
	for i := range 78 {
		f.ccs = append(f.ccs, string([]byte{'A' + byte(i/26), 'A' + byte(i%26)}))
	}
	return f
}

// minute adds one simulated minute of sightings (a million) to e and
// sweeps, as the node would once a minute.
func (f *feed) minute(tb testing.TB, e *correlate.Engine) (alerts int) {
	const perMinute = 1_000_000
	step := time.Minute / perMinute
	for range perMinute {
		f.now = f.now.Add(step)
		o := f.rng.IntN(len(f.orgs))
		at := f.now.Add(-time.Duration(f.rng.Int64N(int64(time.Hour))))
		th := f.rng.IntN(len(f.threats))
		cc := f.ccs[o%len(f.ccs)]
		s := correlate.Sighting{
			Threat:    f.threats[th],
			Org:       f.orgs[o],
			Country:   cc,
			FirstSeen: at,
			LastSeen:  at,
			Count:     1,
			Source:    "cert-" + cc,
			Object:    f.indicators[th],
		}
		f.n++
		as, err := e.Add(s, f.now)
		if err != nil {
			tb.Fatal(err)
		}
		alerts += len(as)
	}
	e.Sweep(f.now)
	return alerts
}

// saturate has every organisation sight every threat once.
func (f *feed) saturate(tb testing.TB, e *correlate.Engine) {
	for _, th := range f.threats {
		for o, org := range f.orgs {
			at := f.now.Add(-time.Duration(f.rng.Int64N(int64(time.Hour))))
			cc := f.ccs[o%len(f.ccs)]
			s := correlate.Sighting{Threat: th, Org: org, Country: cc, FirstSeen: at, LastSeen: at, Count: 1, Source: "cert-" + cc}
			if _, err := e.Add(s, f.now); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkAdd measures sustained correlation: each iteration is one
// simulated minute of a million sightings. It reports sightings per
// second and the heap in use after the warm-up (every threat sighted by
// every organisation, then one simulated minute) and after the last
// minute, which must stay flat.
func BenchmarkAdd(b *testing.B) {
	// Every source under a quota, checked on every sighting (set far
	// above the ~13,000 sightings per simulated minute each sends, so
	// none is refused).
	e, err := correlate.New(correlate.Config{FederationCountries: 78, DefaultQuota: 100_000_000})
	if err != nil {
		b.Fatal(err)
	}
	f := newFeed()
	for _, cc := range f.ccs {
		e.SetSource("cert-"+cc, correlate.SourceInfo{Home: cc, Weight: 1, Quota: 100_000_000})
	}
	// Warm up: every (threat, organisation) pair is seen once, so that
	// what follows adds sightings but no new reporters; memory must then
	// stay flat however many sightings arrive.
	f.saturate(b, e)
	f.minute(b, e)
	before := heapInuse()
	b.ResetTimer()
	start := time.Now()
	n := f.n
	for b.Loop() {
		f.minute(b, e)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := heapInuse()
	b.ReportMetric(float64(f.n-n)/elapsed.Seconds(), "sightings/s")
	b.ReportMetric(float64(before)/(1<<20), "heap-MiB-warm")
	b.ReportMetric(float64(after)/(1<<20), "heap-MiB-last")
	b.ReportMetric(float64(e.Stats().Threats), "threats")
}

// BenchmarkAddDuplicate measures a flood of one repeated sighting, which
// must be cheap and must not grow memory.
func BenchmarkAddDuplicate(b *testing.B) {
	e, err := correlate.New(correlate.Config{})
	if err != nil {
		b.Fatal(err)
	}
	s := sighting(1, malware, "identity--a", "FR", t0)
	now := t0.Add(time.Minute)
	if _, err := e.Add(s, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Add(s, now); err != nil {
			b.Fatal(err)
		}
	}
	if st := e.Stats(); st.Accepted != 1 {
		b.Fatalf("a duplicate was accepted: %+v", st)
	}
}
