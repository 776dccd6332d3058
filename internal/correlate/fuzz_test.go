package correlate_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/correlate"
)

// FuzzAdd feeds arbitrary sightings to an engine: it must never panic,
// must refuse or accept each one, and never count more organisations or
// countries than it was given.
func FuzzAdd(f *testing.F) {
	f.Add("malware--1", "identity--a", "FR", int64(0), int64(0), "identity--b", "FR", int64(60), int64(3600))
	f.Add("", "identity--a", "fr", int64(-1<<62), int64(1<<62), "", "", int64(0), int64(-5))
	f.Add("campaign--2", "identity--a", "ZZ", int64(-86400*3), int64(600), "identity--a", "AA", int64(1), int64(0))
	f.Fuzz(func(t *testing.T, threat, org1, cc1 string, f1, l1 int64, org2, cc2 string, f2, l2 int64) {
		e, err := correlate.New(correlate.Config{Tiers: []correlate.Tier{{Name: "one", MinOrgsInOneCountry: 1}, {Name: "two", MinCountries: 2}}})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for i, s := range []correlate.Sighting{
			{ID: "sighting--1", Threat: correlate.ThreatKey(threat), Org: org1, Country: cc1, FirstSeen: now.Add(time.Duration(f1) * time.Second), LastSeen: now.Add(time.Duration(l1) * time.Second)},
			{ID: "sighting--2", Threat: correlate.ThreatKey(threat), Org: org2, Country: cc2, FirstSeen: now.Add(time.Duration(f2) * time.Second), LastSeen: now.Add(time.Duration(l2) * time.Second)},
		} {
			as, err := e.Add(s, now)
			if err == nil {
				for _, a := range as {
					if a.Organisations > i+1 || len(a.Countries) > i+1 {
						t.Fatalf("alert counts %d orgs %v countries after %d sightings", a.Organisations, a.Countries, i+1)
					}
					if !json.Valid(correlate.AlertObject(a)) {
						t.Fatalf("invalid JSON for %+v", a)
					}
				}
			}
		}
		e.Sweep(now.Add(time.Duration(f1) * time.Second))
		st := e.Stats()
		var rejected uint64
		for r := correlate.ReasonInvalid; r <= correlate.ReasonPast; r++ {
			rejected += st.RejectedBy(r)
		}
		if st.Accepted+st.Duplicates+rejected != 2 {
			t.Fatalf("stats %+v do not account for 2 sightings", st)
		}
	})
}
