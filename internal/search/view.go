package search

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// Named is an object referred to by id, with its name.
type Named struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// WarninglistHit is a warninglist that lists a value of the object.
type WarninglistHit struct {
	List  string `json:"list"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// AlertRef is an alert an object supports.
type AlertRef struct {
	ID     string `json:"id"`
	Tier   string `json:"tier"`
	Status string `json:"status"`
}

// AlertSummary is what the view needs of an alert: its threat and the
// objects behind it.
type AlertSummary struct {
	AlertRef
	// Threat is the threat alerted on (an indicator, malware, intrusion
	// set…); Supports the other objects it rests on.
	Threat   string
	Supports []string
}

// DayCount is a number of sightings on one day (UTC, YYYY-MM-DD).
type DayCount struct {
	Day   string `json:"day"`
	Count int    `json:"count"`
}

// SightingStats counts the sightings of an object.
type SightingStats struct {
	ByCountry map[string]int `json:"by_country"`
	ByDay     []DayCount     `json:"by_day"`
}

// Node is an object at the end of a relationship or in a graph.
type Node struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title"`
	TLP   string `json:"tlp,omitempty"`
}

// OutRel is a relationship from the object.
type OutRel struct {
	ID               string `json:"id"`
	RelationshipType string `json:"relationship_type"`
	Target           Node   `json:"target"`
}

// InRel is a relationship to the object.
type InRel struct {
	ID               string `json:"id"`
	RelationshipType string `json:"relationship_type"`
	Source           Node   `json:"source"`
}

// Rels are an object's relationships in both directions.
type Rels struct {
	Out []OutRel `json:"out"`
	In  []InRel  `json:"in"`
}

// Change is one property that changed between two versions (From is
// absent in the first version, To absent when removed).
type Change struct {
	Field string          `json:"field"`
	From  json.RawMessage `json:"from"`
	To    json.RawMessage `json:"to"`
}

// VersionDiff is one version and what changed since the one before.
type VersionDiff struct {
	Modified   time.Time `json:"modified"`
	Collection string    `json:"collection"`
	Changes    []Change  `json:"changes"`
}

// ObjectView is everything the workbench shows of one object (GET
// /api/v1/objects/{id}).
type ObjectView struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Collection   string           `json:"collection"`
	Object       json.RawMessage  `json:"object"`
	Title        string           `json:"title"`
	TLP          string           `json:"tlp"`
	Residency    []string         `json:"residency"`
	Markings     []Named          `json:"markings"`
	Sources      []Named          `json:"sources"`
	Confidence   *int             `json:"confidence"`
	ValidFrom    *time.Time       `json:"valid_from"`
	ValidUntil   *time.Time       `json:"valid_until"`
	Revoked      bool             `json:"revoked"`
	Warninglists []WarninglistHit `json:"warninglists"`
	Sightings    SightingStats    `json:"sightings"`
	Alerts       []AlertRef       `json:"alerts"`
	Rels         Rels             `json:"relationships"`
	Versions     []VersionDiff    `json:"versions"`
}

// View returns one object as p may read it, with everything around it
// (analyst or admin). Every object it shows, the one asked for and those
// it names, is released through the gate as p. ENOTFOUND if p may read no
// version of it.
func (s *Service) View(ctx context.Context, p entente.Principal, id string) (ObjectView, error) {
	if err := requireAnalyst(p, "reading objects"); err != nil {
		return ObjectView{}, err
	}
	if !stix.ValidID(id) {
		return ObjectView{}, entente.Errorf(entente.EINVALID, "id: %q is not a STIX id (type--uuid)", id)
	}
	colls, err := s.readable(ctx, p)
	if err != nil {
		return ObjectView{}, err
	}
	v := ObjectView{ID: id, Residency: []string{}, Markings: []Named{}, Sources: []Named{}, Warninglists: []WarninglistHit{},
		Sightings: SightingStats{ByCountry: map[string]int{}, ByDay: []DayCount{}}, Alerts: []AlertRef{},
		Rels: Rels{Out: []OutRel{}, In: []InRel{}}, Versions: []VersionDiff{}}
	type version struct {
		coll string
		e    entente.ObjectEntry
	}
	var versions []version
	var home entente.Collection
	var latest entente.ObjectEntry
	for _, c := range colls {
		page, err := s.cfg.Release(ctx, p, "", c.ID, entente.ObjectQuery{IDs: []string{id}, Versions: entente.VersionFilter{All: true}, Limit: maxObjectVersions})
		if err != nil {
			return ObjectView{}, err
		}
		for _, e := range page.Entries {
			versions = append(versions, version{c.ID, e})
			if latest.Raw == nil || e.Version.After(latest.Version) {
				latest, home = e, c
			}
		}
	}
	if latest.Raw == nil {
		return ObjectView{}, entente.Errorf(entente.ENOTFOUND, "no collection you may read holds %q", id)
	}
	v.Type, v.Object, v.Collection, v.Title = latest.Type, latest.Raw, home.ID, stix.Title(latest.Raw)
	var o struct {
		Markings     []string        `json:"object_marking_refs"`
		CreatedByRef string          `json:"created_by_ref"`
		Confidence   *int            `json:"confidence"`
		ValidFrom    string          `json:"valid_from"`
		ValidUntil   string          `json:"valid_until"`
		Revoked      bool            `json:"revoked"`
		Pattern      string          `json:"pattern"`
		Value        json.RawMessage `json:"value"`
	}
	_ = json.Unmarshal(latest.Raw, &o)
	v.TLP = tlpName(o.Markings, home)
	v.Confidence, v.Revoked = o.Confidence, o.Revoked
	if t, err := stix.ParseTimestamp(o.ValidFrom); err == nil && o.ValidFrom != "" {
		v.ValidFrom = &t
	}
	if t, err := stix.ParseTimestamp(o.ValidUntil); err == nil && o.ValidUntil != "" {
		v.ValidUntil = &t
	}

	// Everything the view names, fetched at once.
	var names []string
	names = append(names, o.Markings...)
	if o.CreatedByRef != "" {
		names = append(names, o.CreatedByRef)
	}
	if err := s.cfg.Refs.RefreshRefs(ctx); err != nil {
		return ObjectView{}, err
	}
	edges := s.cfg.Refs.Of(id)
	for _, e := range edges {
		names = append(names, e.Ref, e.Other)
	}
	// Where the versions came from.
	var origins []string
	if s.cfg.Provenance != nil {
		prov, err := s.cfg.Provenance(ctx, home.ID, id)
		if err != nil {
			return ObjectView{}, fmt.Errorf("provenance of %s: %w", id, err)
		}
		for _, pr := range prov {
			if pr.Origin != "" && !slices.Contains(origins, pr.Origin) {
				origins = append(origins, pr.Origin)
			}
		}
	}
	names = append(names, origins...)
	got, err := s.fetch(ctx, p, names)
	if err != nil {
		return ObjectView{}, err
	}
	nameOf := func(ref string) string {
		if f, ok := got[ref]; ok {
			return stix.Title(f.entry.Raw)
		}
		return ref
	}

	// Markings: TLP by its level, residency by its jurisdictions.
	for _, m := range o.Markings {
		if t, ok := stix.TLPFromMarking(m); ok {
			v.Markings = append(v.Markings, Named{ID: m, Name: t.String()})
			continue
		}
		n := Named{ID: m, Name: nameOf(m)}
		if f, ok := got[m]; ok {
			if _, js, ok, _ := policy.ParseResidencyMarking(f.entry.Raw); ok {
				v.Residency = append(v.Residency, js...)
			}
		}
		v.Markings = append(v.Markings, n)
	}
	if len(o.Markings) == 0 && v.TLP != "" {
		if t, err := stix.ParseTLP(v.TLP); err == nil {
			v.Markings = append(v.Markings, Named{ID: t.MarkingID(), Name: t.String() + " (the collection's default)"})
		}
	}
	if o.CreatedByRef != "" {
		v.Sources = append(v.Sources, Named{ID: o.CreatedByRef, Name: nameOf(o.CreatedByRef)})
	}
	for _, org := range origins {
		if org != o.CreatedByRef {
			v.Sources = append(v.Sources, Named{ID: org, Name: nameOf(org)})
		}
	}

	// Warninglists and the safety net's rules that list a value of it.
	if s.cfg.Warninglists != nil {
		var values []string
		if o.Pattern != "" {
			values = stix.PatternValues(o.Pattern)
		}
		var val string
		if json.Unmarshal(o.Value, &val) == nil && val != "" {
			values = append(values, val)
		}
		for _, val := range values {
			v.Warninglists = append(v.Warninglists, s.cfg.Warninglists(val)...)
		}
	}

	// Relationships and sightings.
	byDay := map[string]int{}
	for _, e := range edges {
		if e.Type == "sighting" {
			f, ok := got[e.Other]
			if !ok {
				continue
			}
			var sg struct {
				FirstSeen string   `json:"first_seen"`
				LastSeen  string   `json:"last_seen"`
				Created   string   `json:"created"`
				Count     *int     `json:"count"`
				Where     []string `json:"where_sighted_refs"`
				CreatedBy string   `json:"created_by_ref"`
			}
			if json.Unmarshal(f.entry.Raw, &sg) != nil {
				continue
			}
			n := 1
			if sg.Count != nil {
				n = *sg.Count
			}
			when := cmp.Or(sg.LastSeen, sg.FirstSeen, sg.Created)
			if t, err := stix.ParseTimestamp(when); err == nil {
				byDay[t.UTC().Format(time.DateOnly)] += n
			}
			orgs := sg.Where
			if len(orgs) == 0 && sg.CreatedBy != "" {
				orgs = []string{sg.CreatedBy}
			}
			for _, org := range orgs {
				if s.cfg.Country != nil {
					if c := s.cfg.Country(org); c != "" {
						v.Sightings.ByCountry[c] += n
					}
				}
			}
			continue
		}
		if _, ok := got[e.Ref]; !ok {
			continue // a relationship p may not read
		}
		other := Node{ID: e.Other, Type: typeOf(e.Other), Title: nameOf(e.Other)}
		if f, ok := got[e.Other]; ok {
			other.TLP = tlpName(markingsOf(f.entry.Raw), f.coll)
		}
		if e.Outgoing {
			v.Rels.Out = append(v.Rels.Out, OutRel{ID: e.Ref, RelationshipType: e.Type, Target: other})
		} else {
			v.Rels.In = append(v.Rels.In, InRel{ID: e.Ref, RelationshipType: e.Type, Source: other})
		}
	}
	for _, d := range slices.Sorted(maps.Keys(byDay)) {
		v.Sightings.ByDay = append(v.Sightings.ByDay, DayCount{Day: d, Count: byDay[d]})
	}

	// Alerts it supports.
	if s.cfg.Alerts != nil {
		als, err := s.cfg.Alerts(ctx, p)
		if err != nil {
			return ObjectView{}, err
		}
		// An indicator supports the alerts on the threat it indicates
		// (correlation resolves its sightings to that threat).
		threats := map[string]bool{id: true}
		if v.Type == "indicator" {
			for _, e := range edges {
				if e.Outgoing && e.Type == "indicates" {
					threats[e.Other] = true
				}
			}
		}
		for _, a := range als {
			if threats[a.Threat] || slices.Contains(a.Supports, id) {
				v.Alerts = append(v.Alerts, a.AlertRef)
			}
		}
	}

	// Versions, oldest first, each with what changed.
	slices.SortFunc(versions, func(a, b version) int { return a.e.Version.Compare(b.e.Version) })
	var prev map[string]json.RawMessage
	for _, ver := range versions {
		var cur map[string]json.RawMessage
		_ = json.Unmarshal(ver.e.Raw, &cur)
		v.Versions = append(v.Versions, VersionDiff{Modified: ver.e.Version, Collection: ver.coll, Changes: diff(prev, cur)})
		prev = cur
	}
	return v, nil
}

// diff lists the top-level properties that differ between two versions
// (all of cur's when prev is nil), in name order; "modified" is left out.
func diff(prev, cur map[string]json.RawMessage) []Change {
	out := []Change{}
	keys := slices.Sorted(maps.Keys(cur))
	for k := range prev {
		if _, ok := cur[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "modified" {
			continue
		}
		a, b := prev[k], cur[k]
		if a != nil && b != nil && bytes.Equal(compact(a), compact(b)) {
			continue
		}
		out = append(out, Change{Field: k, From: a, To: b})
	}
	return out
}

func compact(b json.RawMessage) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

func markingsOf(raw json.RawMessage) []string {
	var o struct {
		Markings []string `json:"object_marking_refs"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.Markings
}

func typeOf(id string) string {
	t, _, _ := strings.Cut(id, "--")
	return t
}
