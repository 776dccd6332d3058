package drill

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/stix"
)

// countryRank lists real countries (ISO 3166-1 alpha-2) by the IPv4
// address space registered to them, largest first, as counted from the
// regional registries' delegations in
// shared/data/geo/country-ip-blocks/ipv4 (herrbischoff/country-ip-blocks,
// CC0). The drill takes the first N; larger countries get more
// organisations.
const countryRank = "US CN JP GB DE KR FR BR CA IT NL AU RU IN TW ES SE MX ZA SG EG CH PL AR ID CO TR VN NO FI HK " +
	"BE MA DK AT IE IR SA CL CZ TH UA IL TN RO SC VE PT MY NZ PH KE AE HU GR PK MU DZ BG KZ PE NG LT EC SK SI UY " +
	"HR CR RS GH BD KW SD LV LU BY PA CI ZM DO UG EE GE SY CY AO MD BO PY TZ OM IS PS QA BA PR AZ MK MT SV AM JO " +
	"GT CM NP MG LB LK MW TT HN AL NA LY MZ IQ BH RE"

// MaxCountries is the number of countries the drill can use.
var MaxCountries = len(strings.Fields(countryRank))

// Org is one organisation of the drill, running one node.
type Org struct {
	Index   int
	ID      string // STIX identity id, assigned when its node is initialised
	Name    string
	Country string
	// CERT is set for the national CERT of its country; Parent is the
	// index of the national CERT of a constituent (its own index for a
	// CERT).
	CERT   bool
	Parent int
	// Network is the organisation's own network (a /25): its constituency, which
	// its node never blocks nor alerts on (a national CERT's constituency
	// holds its constituents' networks too).
	Network netip.Prefix
}

// MaxNodes is the number of organisations a drill can have: each has a
// /25 of 81.20.0.0/15 that nothing protects.
const MaxNodes = 512

// placeNetworks gives each organisation its network: the next /25 of
// 81.20.0.0/15 (public space) that net leaves whole. Public resolvers'
// addresses are scattered through every /16; the /25s that hold one are
// skipped, so that an organisation's network is protected by its
// constituency alone.
func (w *world) placeNetworks(net *safety.Net) error {
	next := 0
	for _, o := range w.orgs {
		for ; next < 1024; next++ {
			a := netip.AddrFrom4([4]byte{81, byte(20 + next>>9), byte(next >> 1 & 255), byte(next & 1 * 128)})
			p := netip.PrefixFrom(a, 25)
			if net.Decide(observable.CIDR4, p.String()).Action == safety.Keep {
				o.Network = p
				next++
				break
			}
		}
		if !o.Network.IsValid() {
			return fmt.Errorf("drill: no /25 of 81.20.0.0/15 left for organisation %d", o.Index)
		}
	}
	return nil
}

// world is the federation's organisations and the outbreak they report.
type world struct {
	countries []string
	orgs      []*Org
	certs     []int // indexes of the national CERTs, by country order
	byCountry map[string][]int
	threats   []threat
	sightings []plannedSighting // by replay time
	base      time.Time         // the outbreak's start in sighting time
}

// threat is one malware that spreads in the drill, with the indicator
// (a real ThreatFox C2 address) sensors detect it by.
type threat struct {
	Name      string
	Malware   string // ATT&CK id
	AttackID  string
	IP        string
	Indicator string
	Extent    string // the tier the scenario aims at: national, regional, global
}

// threats are three real malware families from MITRE ATT&CK (ICS 18.1
// ids), each with a C2 address from the abuse.ch ThreatFox IP list: a
// worm that goes global, a wiper that stays regional, an ICS attack on
// one country's grid.
var threatCatalogue = []threat{
	{Name: "WannaCry", Malware: "malware--75ecdbf1-c2bb-4afc-a3f9-c8da4de8c661", AttackID: "S0366", IP: "1.12.42.37", Extent: "global"},
	{Name: "NotPetya", Malware: "malware--5719af9d-6b16-46f9-9b28-fb019541ddbb", AttackID: "S0368", IP: "1.12.66.17", Extent: "regional"},
	{Name: "Industroyer", Malware: "malware--e401d4fe-f0c9-44f0-98e6-f93487678808", AttackID: "S0604", IP: "1.7.147.211", Extent: "national"},
}

// plannedSighting is one sighting an organisation's sensor reports.
type plannedSighting struct {
	Org    int
	Threat int
	// At is when it is reported, from the start of the replay; Seen is
	// the sighting's time (first_seen and last_seen).
	At   time.Duration
	Seen time.Time
	ID   string
}

// drillNS is the UUIDv5 namespace of the drill's deterministic ids.
var drillNS = uuid.MustParse("3b0e8c52-4f7d-4c1e-9a2b-6d5f1e0c7a93")

func detID(typ string, parts ...any) string {
	return typ + "--" + uuid.NewSHA1(drillNS, []byte(fmt.Sprint(parts...))).String()
}

// newWorld places n organisations in the first countries of countryRank
// (one national CERT per country, the other organisations spread by a
// Zipf weight, larger countries first) and plans the outbreak: each
// threat spreads from one organisation with exponential growth over span
// of sighting time, replayed over duration. now places the sighting
// times inside one correlation epoch that is still within the window.
func newWorld(n, nCountries int, seed uint64, span, duration time.Duration, now time.Time, window time.Duration) (*world, error) {
	if nCountries < 1 || nCountries > MaxCountries {
		return nil, fmt.Errorf("countries: %d is not between 1 and %d", nCountries, MaxCountries)
	}
	if n > MaxNodes {
		return nil, fmt.Errorf("nodes: %d; at most %d", n, MaxNodes)
	}
	if n < nCountries {
		return nil, fmt.Errorf("nodes: %d cannot cover %d countries (one national CERT each)", n, nCountries)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &world{countries: strings.Fields(countryRank)[:nCountries], byCountry: map[string][]int{}}
	// One CERT per country, then the others by weight 1/sqrt(rank).
	counts := make([]int, nCountries)
	for i := range counts {
		counts[i] = 1
	}
	weights := make([]float64, nCountries)
	total := 0.0
	for i := range weights {
		weights[i] = 1 / math.Sqrt(float64(i+1))
		total += weights[i]
	}
	for k := nCountries; k < n; k++ {
		x := rng.Float64() * total
		i := 0
		for ; i < nCountries-1 && x > weights[i]; i++ {
			x -= weights[i]
		}
		counts[i]++
	}
	for ci, cc := range w.countries {
		cert := len(w.orgs)
		for j := range counts[ci] {
			o := &Org{Index: len(w.orgs), Country: cc, Parent: cert, CERT: j == 0}
			if o.CERT {
				o.Name = "CERT-" + cc
				w.certs = append(w.certs, o.Index)
			} else {
				o.Name = fmt.Sprintf("%s organisation %d", cc, j)
			}
			w.orgs = append(w.orgs, o)
			w.byCountry[cc] = append(w.byCountry[cc], o.Index)
		}
	}

	// Sighting times: inside one epoch (window-aligned), within the
	// window of now, so that no late sighting moves an alert's epoch.
	epoch := now.Truncate(window)
	w.base = now.Add(-span - time.Minute)
	if w.base.Before(epoch) {
		w.base = epoch.Add(-span - time.Minute)
	}
	scale := float64(duration) / float64(span)
	for ti, th := range threatCatalogue {
		th.Indicator = detID("indicator", "indicator ", th.Name)
		w.threats = append(w.threats, th)
		victims := w.victims(rng, th.Extent)
		// Exponential growth: the k-th of K infections at span·ln(k)/ln(K),
		// jittered; the first a little after the start.
		start := time.Duration(rng.Float64() * float64(span) / 10)
		for k, v := range victims {
			frac := 0.0
			if len(victims) > 1 {
				frac = math.Log(float64(k+1)) / math.Log(float64(len(victims)))
			}
			t := start + time.Duration(frac*float64(span-start)*(0.9+0.1*rng.Float64()))
			w.plan(v, ti, t, scale)
			if rng.Float64() < 0.2 { // a second sensor of the same organisation
				w.plan(v, ti, min(span, t+time.Duration(rng.Float64()*float64(span)/20)), scale)
			}
		}
	}
	sort.SliceStable(w.sightings, func(i, j int) bool { return w.sightings[i].At < w.sightings[j].At })
	for i := range w.sightings {
		w.sightings[i].ID = detID("sighting", "sighting ", seed, " ", i)
	}
	return w, nil
}

func (w *world) plan(org, th int, t time.Duration, scale float64) {
	w.sightings = append(w.sightings, plannedSighting{Org: org, Threat: th,
		At: time.Duration(float64(t) * scale), Seen: w.base.Add(t).Truncate(time.Millisecond)})
}

// victims picks the organisations a threat reaches, in infection order.
// global: from one country outwards, about 40% of all organisations in at
// least half the countries; regional: 3 to 5 countries, at most 3
// organisations each, from one country; national: 2 or 3 organisations of
// the largest country.
func (w *world) victims(rng *rand.Rand, extent string) []int {
	switch extent {
	case "national":
		org := w.byCountry[w.countries[0]]
		k := min(len(org), 2+rng.IntN(2))
		return slices.Clone(org[len(org)-k:])
	case "regional":
		k := min(len(w.countries), 3+rng.IntN(3))
		perm := rng.Perm(len(w.countries))[:k]
		var out []int
		for _, ci := range perm {
			orgs := w.byCountry[w.countries[ci]]
			for _, j := range rng.Perm(len(orgs))[:min(len(orgs), 1+rng.IntN(3))] {
				out = append(out, orgs[j])
			}
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	default:
		// Half the countries at least, then more organisations up to
		// 40% of all; spread order: a random walk over the chosen set.
		countries := rng.Perm(len(w.countries))[:max(1, (len(w.countries)+1)/2+rng.IntN(len(w.countries)/4+1))]
		var out []int
		seen := map[int]bool{}
		for _, ci := range countries {
			orgs := w.byCountry[w.countries[ci]]
			o := orgs[rng.IntN(len(orgs))]
			out, seen[o] = append(out, o), true
		}
		target := max(len(out), len(w.orgs)*2/5)
		for tries := 0; len(out) < target && tries < 20*len(w.orgs); tries++ {
			orgs := w.byCountry[w.countries[countries[rng.IntN(len(countries))]]]
			if o := orgs[rng.IntN(len(orgs))]; !seen[o] {
				out, seen[o] = append(out, o), true
			}
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
}

// intel returns the threat intelligence every node holds before the
// outbreak: for each threat its malware (ATT&CK), its indicator and the
// indicates relationship, TLP:GREEN.
func (w *world) intel() []json.RawMessage {
	green := stix.TLPGreen.MarkingID()
	const ts = "2026-01-01T00:00:00.000Z"
	var out []json.RawMessage
	for _, th := range w.threats {
		mal := map[string]any{"type": "malware", "spec_version": "2.1", "id": th.Malware, "created": ts, "modified": ts,
			"name": th.Name, "is_family": true, "object_marking_refs": []string{green},
			"external_references": []map[string]string{{"source_name": "mitre-attack", "external_id": th.AttackID,
				"url": "https://attack.mitre.org/software/" + th.AttackID}}}
		ind := map[string]any{"type": "indicator", "spec_version": "2.1", "id": th.Indicator, "created": ts, "modified": ts,
			"name": th.Name + " C2 " + th.IP, "pattern_type": "stix", "pattern": "[ipv4-addr:value = '" + th.IP + "']",
			"valid_from": "2026-01-01T00:00:00Z", "indicator_types": []string{"malicious-activity"}, "object_marking_refs": []string{green}}
		rel := map[string]any{"type": "relationship", "spec_version": "2.1", "id": detID("relationship", "indicates ", th.Name),
			"created": ts, "modified": ts, "relationship_type": "indicates", "source_ref": th.Indicator, "target_ref": th.Malware,
			"object_marking_refs": []string{green}}
		for _, o := range []any{mal, ind, rel} {
			b, _ := json.Marshal(o)
			out = append(out, b)
		}
	}
	return out
}

// sightingObject is the STIX sighting an organisation's sensor reports:
// by the organisation, of the threat's indicator, TLP:GREEN.
func (w *world) sightingObject(s plannedSighting) json.RawMessage {
	o := w.orgs[s.Org]
	seen := stix.FormatTimestamp(s.Seen)
	b, _ := json.Marshal(map[string]any{"type": "sighting", "spec_version": "2.1", "id": s.ID, "created": seen, "modified": seen,
		"created_by_ref": o.ID, "first_seen": seen, "last_seen": seen, "count": 1,
		"sighting_of_ref": w.threats[s.Threat].Indicator, "where_sighted_refs": []string{o.ID},
		"object_marking_refs": []string{stix.TLPGreen.MarkingID()}})
	return b
}

// truth is what the federation should produce: the alerts of a single
// engine fed every sighting in the order they were reported, and for each
// alert and tier the sighting that made it reach the tier.
type truth struct {
	tiers []string
	// reached[alert][rank-1] is the index (in report order) of the
	// sighting that first made the alert reach that tier or higher; -1
	// when it never did.
	reached map[string][]int
	threat  map[string]int // alert → threat index
	final   map[string]int // alert → final tier rank
}

// groundTruth runs one engine over the sightings in the order they were
// reported (order[i] indexes w.sightings). Each country counts as one
// independent source, at home in that country: what a CERT sees of
// another country's sightings, which its national CERT vouches for. A
// node never sees fewer sources than that (a CERT counts its own
// constituents one by one), so every node should hold each alert at
// this tier at least.
func groundTruth(cfg correlate.Config, w *world, order []int, now time.Time) (*truth, error) {
	e, err := correlate.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, cc := range w.countries {
		e.SetSource("country "+cc, correlate.SourceInfo{Home: cc, Weight: 1})
	}
	tr := &truth{reached: map[string][]int{}, threat: map[string]int{}, final: map[string]int{}}
	for _, t := range e.Config().Tiers {
		tr.tiers = append(tr.tiers, t.Name)
	}
	for i, si := range order {
		s := w.sightings[si]
		o := w.orgs[s.Org]
		changes, err := e.Add(correlate.Sighting{ID: s.ID, Threat: correlate.ThreatKey(w.threats[s.Threat].Malware), Org: o.ID,
			Country: o.Country, FirstSeen: s.Seen, LastSeen: s.Seen, Count: 1, Source: "country " + o.Country}, now)
		if err != nil {
			return nil, fmt.Errorf("ground truth: sighting %s: %w", s.ID, err)
		}
		for _, a := range changes {
			if a.Change == correlate.ChangeSuperseded {
				delete(tr.reached, a.ID)
				delete(tr.final, a.ID)
				continue
			}
			r := tr.reached[a.ID]
			if r == nil {
				r = slices.Repeat([]int{-1}, len(tr.tiers))
				tr.reached[a.ID] = r
			}
			for k := 0; k < a.TierRank; k++ {
				if r[k] < 0 {
					r[k] = i
				}
			}
			tr.threat[a.ID] = s.Threat
			tr.final[a.ID] = max(tr.final[a.ID], a.TierRank)
		}
	}
	return tr, nil
}
