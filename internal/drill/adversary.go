package drill

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/warninglist"
)

// TargetWarninglists are the MISP warninglists a drill node loads besides
// the shipped ones when Config.Warninglists names a checkout of the
// repository: those that hold the benign targets adversaries aim at
// (public resolvers, CDN ranges, a top list of domains). Loaded once,
// shared by every node.
var TargetWarninglists = []string{"public-dns-v4", "public-dns-hostname", "cloudflare", "akamai", "fastly", "tranco10k"}

// The benign targets adversaries aim at: each adversary takes its own
// (they do not collude), in this order.
var (
	benignResolvers = []string{"8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222", "8.8.4.4", "1.0.0.1", "149.112.112.112"}
	benignCDNs      = []string{"104.16.0.0/13", "151.101.0.0/16", "172.64.0.0/13", "104.24.0.0/14", "131.0.72.0/22", "162.158.0.0/15", "108.162.192.0/18"}
	benignDomains   = []string{"google.com", "microsoft.com", "amazon.com", "apple.com", "facebook.com", "wikipedia.org", "cloudflare.com"}
	// benignUnlisted are benign public addresses no list protects (web
	// hosting: the first is scanme.nmap.org): only the corroboration
	// rules stand between them and a blocklist, and the quarantine is
	// what withdraws the national alert one adversary may raise on them
	// in its own country.
	benignUnlisted = []string{"45.33.32.156", "45.33.32.157", "45.33.32.158", "45.33.32.159", "45.33.32.160", "45.33.32.161", "45.33.32.162"}
	// junkNetworks are what every adversary publishes as indicators.
	junkNetworks = []string{"10.0.0.0/8", "224.0.0.0/3", "0.0.0.0/0"}
)

// fpAddress is the address of the indicator the drill marks a false
// positive at its origin part-way through (a second C2 address of the
// national threat, published by the first national CERT).
const fpAddress = "1.12.69.33"

// Adversary plan sizes: pseudonyms per target, and the flood (sightings
// per adversary, as a multiple of the quota a CERT gives a constituent).
const (
	pseudonymsPerTarget = 12
	floodFactor         = 10
	// DefaultQuota is the sightings per window a CERT lets each of its
	// constituents add in a drill.
	DefaultQuota = 20
)

// target is one thing an adversary reports: a benign value or junk.
type target struct {
	Kind      string // resolver, cdn, domain, unlisted, junk, victim
	Value     string
	Indicator string
	// Victim is the organisation whose network it is (kind victim).
	Victim int
}

// adversary is one misbehaving node and what it injects.
type adversary struct {
	Org     int
	Targets []target
	// batches are injected into the node's sightings collection at their
	// times (from the start of the replay); its push to its CERT carries
	// them through the federation.
	batches [][]json.RawMessage
	at      []time.Duration
	// sightings is how many fabricated sightings it injects.
	sightings int
}

// adversaries is the drill's adversaries, the quarantine and the false
// positive it makes part-way through.
type adversaries struct {
	list []*adversary
	// fpOrigin is the node that publishes the indicator fpIndicator and
	// marks it a false positive; fpObjects the indicator and its
	// relationship.
	fpOrigin    int
	fpIndicator string
	fpObjects   []json.RawMessage
	// targets maps an adversary's indicator ids to the adversary.
	targets map[string]int
}

// planAdversaries picks k organisations (not national CERTs, in k
// different countries, the first not a victim of the outbreak, the
// others not when there are enough) and plans what they
// inject, from 5% to 45% of the replay.
func planAdversaries(w *world, k int, seed uint64, duration, span time.Duration, quota int) (*adversaries, error) {
	a := &adversaries{targets: map[string]int{}, fpOrigin: w.certs[0]}
	a.fpIndicator = detID("indicator", "false positive ", fpAddress)
	const ts = "2026-01-01T00:00:00.000Z"
	green := stix.TLPGreen.MarkingID()
	ind, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": a.fpIndicator, "created": ts, "modified": ts,
		"name": "Industroyer C2 " + fpAddress, "pattern_type": "stix", "pattern": "[ipv4-addr:value = '" + fpAddress + "']",
		"valid_from": "2026-01-01T00:00:00Z", "indicator_types": []string{"malicious-activity"}, "object_marking_refs": []string{green}})
	rel, _ := json.Marshal(map[string]any{"type": "relationship", "spec_version": "2.1", "id": detID("relationship", "false positive indicates"),
		"created": ts, "modified": ts, "relationship_type": "indicates", "source_ref": a.fpIndicator, "target_ref": threatCatalogue[2].Malware,
		"object_marking_refs": []string{green}})
	a.fpObjects = []json.RawMessage{ind, rel}
	if k == 0 {
		return a, nil
	}
	victim := map[int]bool{}
	for _, s := range w.sightings {
		victim[s.Org] = true
	}
	rng := rand.New(rand.NewPCG(seed^0xadd, 13))
	used := map[string]bool{}
	// The first (the one quarantined) is no victim, so that its
	// quarantine withdraws no true sighting; the others are no victims
	// when there are enough organisations.
	perm := rng.Perm(len(w.orgs))
	for _, victims := range []bool{false, true} {
		for _, i := range perm {
			o := w.orgs[i]
			if o.CERT || victim[i] != victims || used[o.Country] || len(a.list) == k || (victims && len(a.list) == 0) {
				continue
			}
			used[o.Country] = true
			a.list = append(a.list, &adversary{Org: i})
		}
	}
	if len(a.list) < k {
		return nil, fmt.Errorf("adversaries: %d wanted, only %d organisations are not national CERTs in distinct countries (the first no victim)", k, len(a.list))
	}
	// Victims: organisations of other countries (and one of the
	// adversary's own), each adversary its own.
	taken := map[int]bool{}
	for _, ad := range a.list {
		taken[ad.Org] = true
	}
	pickVictim := func(ad *adversary, sameCountry bool) int {
		for _, j := range rng.Perm(len(w.orgs)) {
			if taken[j] || (w.orgs[j].Country == w.orgs[ad.Org].Country) != sameCountry {
				continue
			}
			taken[j] = true
			return j
		}
		return -1
	}
	for ai, ad := range a.list {
		o := w.orgs[ad.Org]
		pick := func(l []string) string { return l[ai%len(l)] }
		ad.Targets = []target{{Kind: "resolver", Value: pick(benignResolvers)}, {Kind: "cdn", Value: pick(benignCDNs)}, {Kind: "domain", Value: pick(benignDomains)},
			{Kind: "unlisted", Value: pick(benignUnlisted)}}
		for _, j := range junkNetworks {
			ad.Targets = append(ad.Targets, target{Kind: "junk", Value: j})
		}
		for _, same := range []bool{false, false, true} {
			if v := pickVictim(ad, same); v >= 0 {
				ad.Targets = append(ad.Targets, target{Kind: "victim", Value: w.orgs[v].Network.String(), Victim: v})
			}
		}
		// A victim's address too, inside its network.
		if last := ad.Targets[len(ad.Targets)-1]; last.Kind == "victim" {
			ad.Targets = append(ad.Targets, target{Kind: "victim", Value: w.orgs[last.Victim].Network.Addr().Next().String(), Victim: last.Victim})
		}
		var first []json.RawMessage
		for ti := range ad.Targets {
			t := &ad.Targets[ti]
			t.Indicator = detID("indicator", "adversary ", ai, " ", t.Value)
			a.targets[t.Indicator] = ai
			first = append(first, adversaryIndicator(t))
		}
		locs := map[string]bool{}
		// The sightings: every target under every pseudonym, each in a
		// claimed country, then the flood (the first targets again)
		// up to floodFactor times the quota.
		type planned struct{ t, p int }
		var plan []planned
		// Pseudonyms at home first (p%3 == 0): what one source may raise,
		// the national tier at home, is what an adversary spends its
		// quota on; then the rest.
		for _, home := range []bool{true, false} {
			for p := range pseudonymsPerTarget {
				if (p%3 == 0) != home {
					continue
				}
				for ti := range ad.Targets {
					plan = append(plan, planned{ti, p})
				}
			}
		}
		for n := 0; len(plan) < floodFactor*max(quota, 1); n++ {
			plan = append(plan, planned{n % len(ad.Targets), pseudonymsPerTarget + n})
		}
		var sightings []json.RawMessage
		for si, pl := range plan {
			cc := w.countries[(pl.p+ai)%len(w.countries)]
			if pl.p%3 == 0 {
				cc = o.Country // a third at home, where one source may raise the national tier
			}
			loc := detID("location", "country ", cc)
			if !locs[loc] {
				locs[loc] = true
				b, _ := json.Marshal(map[string]any{"type": "location", "spec_version": "2.1", "id": loc, "created": ts, "modified": ts,
					"country": cc, "object_marking_refs": []string{green}})
				first = append(first, b)
			}
			seen := stix.FormatTimestamp(w.base.Add(time.Duration(float64(span) * 0.45 * float64(si) / float64(len(plan)))).Truncate(time.Millisecond))
			b, _ := json.Marshal(map[string]any{"type": "sighting", "spec_version": "2.1", "id": detID("sighting", "adversary ", ai, " ", si),
				"created": seen, "modified": seen, "created_by_ref": detID("identity", "pseudonym ", ai, " ", pl.p),
				"first_seen": seen, "last_seen": seen, "count": 1, "sighting_of_ref": ad.Targets[pl.t].Indicator,
				"where_sighted_refs": []string{loc}, "object_marking_refs": []string{green}})
			sightings = append(sightings, b)
		}
		ad.sightings = len(sightings)
		ad.batches = append(ad.batches, first)
		ad.at = append(ad.at, time.Duration(0.05*float64(duration)))
		const nBatches = 20
		per := (len(sightings) + nBatches - 1) / nBatches
		for b := 0; b*per < len(sightings); b++ {
			ad.batches = append(ad.batches, sightings[b*per:min(len(sightings), (b+1)*per)])
			ad.at = append(ad.at, time.Duration((0.06+0.39*float64(b)/nBatches)*float64(duration)))
		}
	}
	return a, nil
}

// adversaryIndicator is the indicator an adversary publishes for t.
func adversaryIndicator(t *target) json.RawMessage {
	const ts = "2026-01-01T00:00:00.000Z"
	pat := "[ipv4-addr:value = '" + t.Value + "']"
	if t.Kind == "domain" {
		pat = "[domain-name:value = '" + t.Value + "']"
	}
	b, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": t.Indicator, "created": ts, "modified": ts,
		"name": "C2 " + t.Value, "pattern_type": "stix", "pattern": pat, "valid_from": "2026-01-01T00:00:00Z",
		"indicator_types": []string{"malicious-activity"}, "object_marking_refs": []string{stix.TLPGreen.MarkingID()}})
	return b
}

// loadNet builds the net every drill node's is derived from: the IANA
// registries, the shipped warninglists and, when dir is set, the
// TargetWarninglists of that checkout; networks never wider than /8 or
// /16, cut around protected space (a node's default configuration).
func loadNet(dir string) (*safety.Net, error) {
	lists, err := safety.ShippedWarninglists()
	if err != nil {
		return nil, err
	}
	if dir != "" {
		for _, name := range TargetWarninglists {
			ls, err := warninglist.LoadLists(filepath.Join(dir, "lists", name))
			if err != nil {
				return nil, fmt.Errorf("warninglist %s: %w", name, err)
			}
			if len(ls) == 0 {
				return nil, fmt.Errorf("warninglist %s: not found in %s", name, dir)
			}
			lists = append(lists, ls...)
		}
	}
	return safety.New(safety.Config{IANA: true, Warninglists: lists, WidestIPv4: 8, WidestIPv6: 16})
}

// inject has each adversary's node store its batches on time, as its
// operator (its sightings collection, which it pushes to its CERT).
func (f *federation) inject(ctx context.Context, start time.Time) error {
	type step struct {
		at    time.Duration
		adv   int
		batch []json.RawMessage
	}
	var steps []step
	for ai, ad := range f.adv.list {
		for b := range ad.batches {
			steps = append(steps, step{ad.at[b], ai, ad.batches[b]})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	for _, s := range steps {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(s.at))):
		}
		n := f.nodes[f.adv.list[s.adv].Org]
		st, err := n.svc.AddObjects(ctx, node.LocalAdmin(n.org.ID), node.CollectionSightings, s.batch)
		if err != nil {
			return fmt.Errorf("adversary %s: inject: %w", n.org.Name, err)
		}
		if st.FailureCount > 0 {
			return fmt.Errorf("adversary %s: inject: %d refused, first: %s", n.org.Name, st.FailureCount, st.Failures[0].Message)
		}
	}
	return nil
}

// AdversaryResult is what adversaries did and what the federation's
// defences made of it.
type AdversaryResult struct {
	K int `json:"k"`
	// Nodes are the adversaries ("name (country)"); Targets what they
	// aimed at, by adversary.
	Nodes   []string   `json:"nodes"`
	Targets [][]string `json:"targets"`
	// Sightings is how many fabricated sightings they injected; Quota
	// the sightings per window their CERT lets each constituent add.
	Sightings int `json:"sightings"`
	Quota     int `json:"quota"`
	// Delivered counts the (honest node, adversary indicator) pairs
	// where the node stored the indicator: what the federation carried
	// of the attack, for the defences to stop.
	Delivered int `json:"delivered"`
	// FalseAlerts lists the alerts on something other than the
	// outbreak's threats, with their highest tier and how many nodes
	// held them.
	FalseAlerts []FalseAlert `json:"false_alerts"`
	// ExportsChecked is how many (node, format) exports were rendered
	// and checked; ProtectedInExports counts entries of honest nodes'
	// exports that are protected (special-purpose space, any node's
	// constituency, what the warninglists protect), Protected describes
	// the first ones; AdversaryOwnProtected counts those in the
	// adversaries' own exports (not counted above).
	ExportsChecked        int      `json:"exports_checked"`
	ProtectedInExports    int      `json:"protected_in_exports"`
	Protected             []string `json:"protected,omitempty"`
	AdversaryOwnProtected int      `json:"adversary_own_protected"`
	// Quarantine is the withdrawal, at every node, of the alerts the
	// quarantined adversary alone supported.
	Quarantine *Withdrawal `json:"quarantine,omitempty"`
	// Retraction is the false positive's retraction reaching every node
	// that received the indicator.
	Retraction *Withdrawal `json:"retraction"`
}

// FalseAlert is an alert on a benign target or junk.
type FalseAlert struct {
	Alert  string `json:"alert"`
	Threat string `json:"threat"`
	Value  string `json:"value"`
	Tier   string `json:"tier"`
	Nodes  int    `json:"nodes"`
}

// Withdrawal is how long something took to reach every node it should.
type Withdrawal struct {
	// What was done, by which node, at what time of the replay.
	What string  `json:"what"`
	By   string  `json:"by"`
	AtS  float64 `json:"at_s"`
	// Pairs is the (node, object) pairs it should reach; Reached those
	// it reached.
	Pairs   int     `json:"pairs"`
	Reached int     `json:"reached"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	// Hops splits the quarantine's pairs along the path a withdrawal
	// takes (see withdrawalHopNames), as TierResult.Hops does for alerts.
	Hops []Hop `json:"hops,omitempty"`
}

// withdrawalHopNames name the legs of a quarantine's withdrawal of an
// alert at a node: the quarantining CERT stored its retractions
// ("retraction"), the node's CERT stored them ("cert-to-cert"; 0 at
// the quarantining CERT), that CERT held the alert withdrawn
// ("withdrawal"), then the node ("alert-push"; 0 at the CERT itself).
var withdrawalHopNames = [...]string{"retraction", "cert-to-cert", "withdrawal", "alert-push"}

// startAdversaries publishes the indicator the drill will mark a false
// positive (at its origin, which shares it with the other CERTs), and
// runs the adversaries' injections and the midway actions from start.
// The channel receives the first error, or nil, once both are done.
func (f *federation) startAdversaries(ctx context.Context, start time.Time, duration time.Duration, res *AdversaryResult) chan error {
	done := make(chan error, 1)
	origin := f.nodes[f.adv.fpOrigin]
	f.rec.watchObject(f.adv.fpIndicator)
	for id := range f.adv.targets {
		f.rec.watchObject(id)
	}
	st, err := origin.svc.AddObjects(ctx, node.LocalAdmin(origin.org.ID), origin.colls[collReports], f.adv.fpObjects)
	if err == nil && st.FailureCount > 0 {
		err = fmt.Errorf("%s", st.Failures[0].Message)
	}
	if err != nil {
		done <- fmt.Errorf("publish the indicator to mark a false positive: %w", err)
		return done
	}
	injected := make(chan error, 1)
	go func() { injected <- f.inject(ctx, start) }()
	go func() {
		q, m, err := f.midway(ctx, start, duration, res)
		f.quarantinedAt, f.markedAt = q, m
		if ierr := <-injected; err == nil {
			err = ierr
		}
		done <- err
	}()
	return done
}

// midway performs, at half of the replay, the quarantine of the first
// adversary by its CERT and the false positive at its origin, and
// returns what it started.
func (f *federation) midway(ctx context.Context, start time.Time, duration time.Duration, res *AdversaryResult) (quarantinedAt, markedAt time.Time, err error) {
	select {
	case <-ctx.Done():
		return time.Time{}, time.Time{}, ctx.Err()
	case <-time.After(time.Until(start.Add(duration / 2))):
	}
	if len(f.adv.list) > 0 {
		ad := f.nodes[f.adv.list[0].Org]
		cert := f.nodes[ad.org.Parent]
		quarantinedAt = time.Now()
		if _, err := cert.svc.QuarantinePartner(ctx, node.LocalAdmin(cert.org.ID), ad.org.ID, "drill: fabricated sightings"); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("quarantine %s at %s: %w", ad.org.Name, cert.org.Name, err)
		}
		res.Quarantine = &Withdrawal{What: "quarantine of " + ad.org.Name, By: cert.org.Name, AtS: quarantinedAt.Sub(start).Seconds()}
	}
	origin := f.nodes[f.adv.fpOrigin]
	markedAt = time.Now()
	if _, err := origin.svc.MarkFalsePositive(ctx, node.LocalAdmin(origin.org.ID), f.adv.fpIndicator, "drill: false positive"); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("mark %s a false positive at %s: %w", f.adv.fpIndicator, origin.org.Name, err)
	}
	res.Retraction = &Withdrawal{What: "false positive " + f.adv.fpIndicator + " (" + fpAddress + ")", By: origin.org.Name, AtS: markedAt.Sub(start).Seconds()}
	return quarantinedAt, markedAt, nil
}

// withdrawals fills res.Quarantine and res.Retraction from the
// recorder: for the quarantine, every (node, alert) pair where the node
// held an alert on a target of the quarantined adversary, until it held
// it withdrawn; for the false positive, every node (but its origin) that
// received the indicator, until it held its retraction. It reports
// whether every pair was reached.
func (f *federation) withdrawals(res *AdversaryResult, quarantinedAt, markedAt time.Time) bool {
	r := f.rec
	all := true
	fill := func(wd *Withdrawal, lat []float64) {
		sort.Float64s(lat)
		wd.Reached = len(lat)
		if len(lat) > 0 {
			wd.P50Ms, wd.P99Ms, wd.MaxMs = pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1]
		}
		all = all && wd.Reached == wd.Pairs
	}
	if wd := res.Quarantine; wd != nil {
		var lat []float64
		var hops []hopSample
		pairs := 0
		r.mu.Lock()
		by := f.w.orgs[f.adv.list[0].Org].Parent
		for n := range f.nodes {
			for a, at := range r.at[n] {
				if len(at) == 0 || at[0].IsZero() {
					continue
				}
				if ai, ok := f.adv.targets[r.threat[a]]; !ok || ai != 0 {
					continue
				}
				pairs++
				if g := r.gone[n][a]; !g.IsZero() && !g.Before(quarantinedAt) {
					ms := float64(g.Sub(quarantinedAt)) / float64(time.Millisecond)
					lat = append(lat, ms)
					c := f.w.orgs[n].Parent
					t := [...]time.Time{quarantinedAt, r.quarantineOp[by], r.quarantineOp[c], r.gone[c][a], g}
					if !slices.ContainsFunc(t[:], time.Time.IsZero) {
						h := hopSample{total: ms}
						// Each leg from the latest time before it: the
						// quarantining CERT withdraws its own alerts
						// before it stores the retractions.
						last := t[0]
						for k := range h.legs {
							h.legs[k] = float64(max(0, t[k+1].Sub(last))) / float64(time.Millisecond)
							last = maxTime(last, t[k+1])
						}
						hops = append(hops, h)
					}
				}
			}
		}
		r.mu.Unlock()
		wd.Pairs = pairs
		fill(wd, lat)
		wd.Hops = hopFigures(hops)
		for k := range wd.Hops {
			wd.Hops[k].Hop = withdrawalHopNames[k]
		}
	}
	if wd := res.Retraction; wd != nil {
		var lat []float64
		pairs := 0
		r.mu.Lock()
		for n := range f.nodes {
			if n == f.adv.fpOrigin || r.seen[n][f.adv.fpIndicator].IsZero() {
				continue
			}
			pairs++
			if g := r.retracted[n][f.adv.fpIndicator]; !g.IsZero() {
				lat = append(lat, float64(max(0, g.Sub(markedAt)))/float64(time.Millisecond))
			}
		}
		r.mu.Unlock()
		wd.Pairs = pairs
		fill(wd, lat)
	}
	return all
}

// maxTime is the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// falseAlerts lists the alerts any node held whose threat is not one of
// the outbreak's, and fills each tier's FalseAlerts.
func (f *federation) falseAlerts(res *Result, ar *AdversaryResult) {
	truth := map[string]bool{}
	for _, th := range f.w.threats {
		truth[th.Malware], truth[th.Indicator] = true, true
	}
	values := map[string]string{}
	for _, ad := range f.adv.list {
		for _, t := range ad.Targets {
			values[t.Indicator] = t.Kind + " " + t.Value
		}
	}
	r := f.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	adv := map[int]bool{}
	for _, ad := range f.adv.list {
		adv[ad.Org] = true
	}
	for n := range f.nodes {
		for id := range f.adv.targets {
			if !adv[n] && !r.seen[n][id].IsZero() {
				ar.Delivered++
			}
		}
	}
	type agg struct {
		rank  int
		nodes int
	}
	found := map[string]*agg{}
	for n := range f.nodes {
		for a, at := range r.at[n] {
			if truth[r.threat[a]] {
				continue
			}
			rank := 0
			for k := range at {
				if !at[k].IsZero() {
					rank = k + 1
				}
			}
			if rank == 0 {
				continue
			}
			g := found[a]
			if g == nil {
				g = &agg{}
				found[a] = g
			}
			g.rank, g.nodes = max(g.rank, rank), g.nodes+1
		}
	}
	for _, a := range slices.Sorted(mapKeys(found)) {
		g := found[a]
		th := r.threat[a]
		ar.FalseAlerts = append(ar.FalseAlerts, FalseAlert{Alert: a, Threat: th, Value: values[th], Tier: res.Tiers[g.rank-1].Tier, Nodes: g.nodes})
		for k := 0; k < g.rank && k < len(res.Tiers); k++ {
			res.Tiers[k].FalseAlerts++
		}
	}
}

// checkedFormats are the export formats rendered for the check.
var checkedFormats = []string{export.FormatPlain, export.FormatNftables, export.FormatIPSet, export.FormatSuricata,
	export.FormatSuricataDataset, export.FormatZeek, export.FormatRPZ, export.FormatHosts, export.FormatCSV}

var (
	ipToken  = regexp.MustCompile(`[0-9a-fA-F:.]*[:.][0-9a-fA-F:.]+(/\d{1,3})?`)
	rpzToken = regexp.MustCompile(`\b(\d{1,2})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.rpz-ip\b`)
)

// checkExports renders every node's exports through its normal export
// path and checks every address, network and targeted domain in them
// against the protected set: what the shared net protects (registries,
// warninglists) and every node's constituency.
func (f *federation) checkExports(ctx context.Context, ar *AdversaryResult) error {
	var all []safety.Entry
	for _, o := range f.w.orgs {
		all = append(all, safety.Entry{Value: o.Network.String(), Where: o.Name})
	}
	protected, err := f.safety.WithConstituency(all)
	if err != nil {
		return err
	}
	var domains []string
	adv := map[int]bool{}
	for _, ad := range f.adv.list {
		adv[ad.Org] = true
		for _, t := range ad.Targets {
			if t.Kind == "domain" {
				domains = append(domains, t.Value)
			}
		}
	}
	for i, n := range f.nodes {
		for _, format := range checkedFormats {
			out, err := n.svc.Export(ctx, node.LocalAdmin(n.org.ID), node.ExportRequest{Format: format})
			if err != nil {
				return fmt.Errorf("node %d: export %s: %w", i, format, err)
			}
			ar.ExportsChecked++
			for _, file := range out.Files {
				for _, hit := range protectedEntries(protected, format, string(file.Data), domains) {
					if adv[i] {
						ar.AdversaryOwnProtected++
						continue
					}
					ar.ProtectedInExports++
					if len(ar.Protected) < maxListed {
						ar.Protected = append(ar.Protected, fmt.Sprintf("%s %s: %s", n.org.Name, format, hit))
					}
				}
			}
		}
	}
	return nil
}

// protectedEntries returns the entries of out (an export in format)
// that net protects, and the targeted domains it holds.
func protectedEntries(net *safety.Net, format, out string, domains []string) []string {
	var hits []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if format == export.FormatHosts {
			line = strings.TrimPrefix(line, "0.0.0.0 ") // the sinkhole address
		}
		for _, d := range domains {
			if containsDomain(line, d) {
				hits = append(hits, d+" (a benign target): "+line)
			}
		}
		var vals []string
		for _, m := range rpzToken.FindAllStringSubmatch(line, -1) {
			vals = append(vals, fmt.Sprintf("%s.%s.%s.%s/%s", m[5], m[4], m[3], m[2], m[1]))
		}
		if len(vals) == 0 {
			vals = ipToken.FindAllString(line, -1)
		}
		for _, v := range vals {
			if !strings.ContainsAny(v, "0123456789") {
				continue // the "::" of Intel::ADDR
			}
			var k observable.Kind
			if p, err := netip.ParsePrefix(v); err == nil {
				k, v = observable.CIDR4, p.Masked().String()
				if p.Addr().Is6() {
					k = observable.CIDR6
				}
			} else if a, err := netip.ParseAddr(v); err == nil {
				k, v = observable.IPv4, a.String()
				if a.Is6() {
					k = observable.IPv6
				}
			} else {
				continue
			}
			if d := net.Decide(k, v); d.Action != safety.Keep {
				hits = append(hits, fmt.Sprintf("%s (%s by %s)", v, d.Action, d.Rule))
			}
		}
	}
	return hits
}

// containsDomain reports whether line names domain d or a subdomain of
// it as a whole name.
func containsDomain(line, d string) bool {
	for i := 0; ; {
		j := strings.Index(line[i:], d)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(d)
		before := j == 0 || !isNameByte(line[j-1]) || line[j-1] == '.'
		after := end == len(line) || !isNameByte(line[end]) || (line[end] == '.' && (end+1 == len(line) || !isNameByte(line[end+1])))
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isNameByte(c byte) bool {
	return c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// adversarySummary writes the adversaries' figures for people.
func adversarySummary(wr io.Writer, res *Result) {
	ar := res.Adversaries
	fmt.Fprintf(wr, "\nAdversaries: %d (%s), %d fabricated sightings (quota %d per constituent and window)\n", ar.K, strings.Join(ar.Nodes, ", "), ar.Sightings, ar.Quota)
	for i, ts := range ar.Targets {
		fmt.Fprintf(wr, "  %s aims at: %s\n", ar.Nodes[i], strings.Join(ts, ", "))
	}
	fmt.Fprintf(wr, "%-9s %8s %9s %7s %6s\n", "tier", "expected", "true", "recall", "false")
	for _, t := range res.Tiers {
		fmt.Fprintf(wr, "%-9s %8d %9d %6.0f%% %6d\n", t.Tier, t.ExpectedAlerts, t.DeliveredAlerts, 100*t.Recall, t.FalseAlerts)
	}
	for _, fa := range ar.FalseAlerts {
		fmt.Fprintf(wr, "  false alert %s on %s: %s at %d nodes\n", fa.Alert, fa.Value, fa.Tier, fa.Nodes)
	}
	fmt.Fprintf(wr, "Adversaries' indicators stored by honest nodes: %d (node, indicator) pairs\n", ar.Delivered)
	fmt.Fprintf(wr, "Protected entries in honest nodes' exports: %d (%d exports checked; %d in the adversaries' own)\n", ar.ProtectedInExports, ar.ExportsChecked, ar.AdversaryOwnProtected)
	for _, p := range ar.Protected {
		fmt.Fprintf(wr, "  %s\n", p)
	}
	for _, wd := range []*Withdrawal{ar.Quarantine, ar.Retraction} {
		if wd == nil {
			continue
		}
		fmt.Fprintf(wr, "%s by %s at %.1f s: reached %d of %d (node, object) pairs; p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
			wd.What, wd.By, wd.AtS, wd.Reached, wd.Pairs, wd.P50Ms, wd.P99Ms, wd.MaxMs)
		for _, h := range wd.Hops {
			fmt.Fprintf(wr, "  %-13s p50 %6.0f  p99 %6.0f  max %6.0f  tail %6.0f ms\n", h.Hop, h.P50Ms, h.P99Ms, h.MaxMs, h.TailMs)
		}
	}
}
