package policy_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// BenchmarkServe10k measures the cost of the gate on a TAXII read of
// 10,000 objects: "plain" writes the envelope of 10,000 stored objects (the
// least work a read does, without store or network), "gated" checks each
// object first with Gate.Check. The goal is a gate cost under 10% of the read.
func BenchmarkServe10k(b *testing.B) {
	const n = 10_000
	self := policy.Party{ID: "identity--self", Country: "FR"}
	p := policy.Party{ID: "identity--p", Country: "DE"}
	a := &policy.Agreement{ID: "a", Partner: p, Collections: []string{"c0", "c1"}, MaxTLP: stix.TLPAmber, AllowReshare: true}
	g := policy.NewGate(self, nil)
	raws := make([]json.RawMessage, n)
	metas := make([]policy.ObjectMeta, n)
	for i := range n {
		id := fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i)
		raws[i] = json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"` + id +
			`","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.0.0.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`)
		metas[i] = policy.ObjectMeta{ID: id, Type: "indicator", Collection: "c1", TLP: stix.TLP(i % 4), Residency: []string{"DE", "FR"}}
		if i%3 == 0 {
			metas[i].Origin = "identity--q"
		}
	}
	now := time.Now()
	buf := make([]byte, 0, 4<<20)
	serve := func(gate bool) int {
		buf = append(buf[:0], `{"more":false,"objects":[`...)
		k := 0
		for i := range raws {
			if gate {
				if d := g.Check(a, p, metas[i], now); !d.Allow {
					continue
				}
			}
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, raws[i]...)
			k++
		}
		buf = append(buf, "]}"...)
		return k
	}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			serve(false)
		}
	})
	b.Run("gated", func(b *testing.B) {
		for b.Loop() {
			if serve(true) == 0 {
				b.Fatal("nothing allowed")
			}
		}
	})
}

// BenchmarkReleaseRedacted measures Release on a sighting with every
// redaction applied (the slow path: decode, edit, encode).
func BenchmarkReleaseRedacted(b *testing.B) {
	g := relGate()
	a := relAgreement(policy.Redaction{SightingVictimsToCountry: true, RemoveThirdPartyIdentities: true, StripFreeText: true})
	raw := json.RawMessage(`{"type":"sighting","spec_version":"2.1","id":"sighting--1","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"sighting_of_ref":"indicator--1","count":3,"description":"seen","where_sighted_refs":["` + relVictim + `"],"created_by_ref":"` + relThird + `"}`)
	obj := policy.ObjectMeta{ID: "sighting--1", Type: "sighting", Collection: "c", TLP: stix.TLPGreen}
	now := time.Now()
	for b.Loop() {
		if _, d, err := g.Release(a, relPartner, obj, raw, now); err != nil || !d.Allow {
			b.Fatal(d.Reason, err)
		}
	}
}
