// Package search finds the objects a query names — by STIX id, or by a
// value whose observables and matching indicators it looks up — and
// shows one object with its versions, sources, markings and what refers
// to it, all read through the policy gate as the asking principal.
package search

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/alerting"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/stix"
)

// Releaser releases one page of a collection to an audience through the
// policy gate.
type Releaser func(ctx context.Context, p entente.Principal, channel, collection string, q entente.ObjectQuery) (entente.Page, error)

// Refs tells who refers to an object (alerting's index, filled as
// correlation reads relationships and sightings).
type Refs interface {
	RefreshRefs(ctx context.Context) error
	Of(id string) []alerting.Edge
}

// Provenance is where one version of an object came from.
type Provenance struct {
	Version    time.Time
	Origin     string
	Peer       string
	ReceivedAt time.Time
}

// Config is what search needs.
type Config struct {
	Release Releaser
	// Collections lists the collections p may see.
	Collections func(ctx context.Context, p entente.Principal) ([]entente.Collection, error)
	// Snapshot returns the compiled indicator snapshot p may read and
	// its entity tag.
	Snapshot func(ctx context.Context, p entente.Principal) ([]byte, string, error)
	Refs     Refs
	// Provenance returns where the versions of object id in a collection
	// came from (none for the node's own).
	Provenance func(ctx context.Context, collection, id string) ([]Provenance, error)

	// Index is the store's full-text index; nil: Find answers that there
	// is none.
	Index func(ctx context.Context, q IndexQuery) (IndexPage, error)
	// Version returns a token that changes whenever what the store holds
	// changes (caches of derived views are keyed on it).
	Version func(ctx context.Context) (string, error)
	// Alerts lists the alerts p may read, with what supports each.
	Alerts func(ctx context.Context, p entente.Principal) ([]AlertSummary, error)
	// Country returns the country of an organisation ("" when unknown).
	Country func(org string) string
	// Warninglists returns the warninglists (and the node's protected
	// ranges) that list a value.
	Warninglists func(value string) []WarninglistHit
}

// Service finds and shows objects. It is safe for concurrent use.
type Service struct {
	cfg     Config
	decoded decodedSnapshots
	matrix  matrixCache
}

// New returns the search of a node.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

// requireAnalyst refuses principals that are neither analysts nor admins.
func requireAnalyst(p entente.Principal, action string) error {
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the analyst or admin role; this key's role is %q", action, p.Role)
	}
	return nil
}

func cmpOr(a, b string) string { return cmp.Or(a, b) }

// SearchResult is one object a search found, with where and why.
type SearchResult struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Collection string `json:"collection"`
	// CollectionTitle is the collection's alias, else its title.
	CollectionTitle string    `json:"collection_title,omitempty"`
	Name            string    `json:"name,omitempty"`
	Version         time.Time `json:"version"`
	// Why says how the object matched: "id", "observable" (the SCO of
	// the value) or "indicator" (its pattern matches the value).
	Why string `json:"why"`
}

// maxSearchResults bounds a search's answer.
const maxSearchResults = 200

// Search finds the objects a query names (analyst or admin): a STIX id,
// or a value (IP address or network, domain, URL, e-mail address, hash)
// whose observable objects are found by their deterministic SCO ids and
// whose indicators are found by matching the value against the compiled
// indicator snapshot: indexed lookups, never a scan of the store.
// Objects are read through release, in the collections p may read.
// EINVALID if the query is neither an id nor a recognised value.
func (s *Service) Search(ctx context.Context, p entente.Principal, query string) ([]SearchResult, error) {
	if err := requireAnalyst(p, "searching"); err != nil {
		return nil, err
	}
	query = strings.TrimSpace(query)
	why := map[string]string{}
	if typ, _, ok := strings.Cut(query, "--"); ok && typ != "" && !strings.ContainsAny(query, " /@") {
		why[query] = "id"
	} else {
		k, v, err := observable.Detect(query)
		if err != nil {
			return nil, entente.Errorf(entente.EINVALID, "search: %v", err)
		}
		for _, id := range scoIDs(k, v) {
			why[id] = "observable"
		}
		ids, err := s.indicatorsMatching(ctx, p, k, v)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if why[id] == "" {
				why[id] = "indicator"
			}
		}
	}
	if len(why) == 0 {
		return []SearchResult{}, nil
	}
	ids := make([]string, 0, len(why))
	for id := range why {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	colls, err := s.cfg.Collections(ctx, p)
	if err != nil {
		return nil, err
	}
	out := []SearchResult{}
	for _, c := range colls {
		if !c.CanRead(p.Role) {
			continue
		}
		for e, err := range s.releasedByID(ctx, p, c.ID, ids, nil) {
			if err != nil {
				return nil, err
			}
			out = append(out, SearchResult{ID: e.ID, Type: e.Type, Collection: c.ID, CollectionTitle: cmpOr(c.Alias, c.Title), Name: displayName(e.Raw), Version: e.Version, Why: why[e.ID]})
			if len(out) >= maxSearchResults {
				return out, nil
			}
		}
	}
	return out, nil
}

// scoIDs returns the deterministic ids of the observable objects that
// hold value v of kind k.
func scoIDs(k observable.Kind, v string) []string {
	var typ, body string
	switch k {
	case observable.IPv4, observable.CIDR4:
		typ = "ipv4-addr"
	case observable.IPv6, observable.CIDR6:
		typ = "ipv6-addr"
	case observable.Domain:
		typ = "domain-name"
	case observable.URL:
		typ = "url"
	case observable.Email:
		typ = "email-addr"
	case observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512:
		alg := map[observable.Kind]string{observable.MD5: "MD5", observable.SHA1: "SHA-1", observable.SHA256: "SHA-256", observable.SHA512: "SHA-512"}[k]
		b, _ := json.Marshal(map[string]map[string]string{"hashes": {alg: v}})
		body, typ = string(b), "file"
	}
	if typ == "" {
		return nil
	}
	if body == "" {
		b, _ := json.Marshal(map[string]string{"value": v})
		body = string(b)
	}
	id, err := stix.SCOID(typ, json.RawMessage(body))
	if err != nil {
		return nil
	}
	return []string{id}
}

// decodedSnapshots keeps, per audience, the last indicator snapshot
// decoded for searches, with its ETag.
type decodedSnapshots struct {
	mu    sync.Mutex
	byKey map[string]decodedSnapshot
}

type decodedSnapshot struct {
	etag string
	snap *match.Snapshot
}

// IndicatorsFor returns the ids of the indicators p may read whose
// patterns match the address a (from the compiled snapshot sensors
// download); none for an invalid address.
func (s *Service) IndicatorsFor(ctx context.Context, p entente.Principal, a netip.Addr) ([]string, error) {
	switch {
	case a.Is4() || a.Is4In6():
		return s.indicatorsMatching(ctx, p, observable.IPv4, a.Unmap().String())
	case a.Is6():
		return s.indicatorsMatching(ctx, p, observable.IPv6, a.String())
	}
	return nil, nil
}

// indicatorsMatching returns the ids of the indicators p may read whose
// patterns match value v of kind k, from the compiled snapshot (the
// one sensors download: rebuilt in the background when stale).
func (s *Service) indicatorsMatching(ctx context.Context, p entente.Principal, k observable.Kind, v string) ([]string, error) {
	data, etag, err := s.cfg.Snapshot(ctx, p)
	if err != nil {
		return nil, err
	}
	key := p.Org + "|" + string(p.Role)
	d := &s.decoded
	d.mu.Lock()
	got, ok := d.byKey[key]
	d.mu.Unlock()
	if !ok || got.etag != etag {
		snap, err := match.ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("decode indicator snapshot: %w", err)
		}
		got = decodedSnapshot{etag: etag, snap: snap}
		d.mu.Lock()
		if d.byKey == nil {
			d.byKey = map[string]decodedSnapshot{}
		}
		d.byKey[key] = got
		d.mu.Unlock()
	}
	var obs sensor.Obs
	switch k {
	case observable.IPv4, observable.IPv6:
		obs = sensor.Obs{Kind: sensor.ObsIP, Value: []byte(v)}
	case observable.Domain:
		obs = sensor.Obs{Kind: sensor.ObsDomain, Value: []byte(v)}
	case observable.Email:
		obs = sensor.Obs{Kind: sensor.ObsEmail, Value: []byte(v)}
	case observable.URL:
		host, path := v, "/"
		if _, rest, ok := strings.Cut(v, "://"); ok {
			host = rest
		}
		if i := strings.IndexAny(host, "/?"); i >= 0 {
			host, path = host[:i], host[i:]
		}
		obs = sensor.Obs{Kind: sensor.ObsURL, Value: []byte(host), Aux: []byte(path)}
	case observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512:
		obs = sensor.Obs{Kind: sensor.ObsHash, Value: []byte(v)}
	default:
		return nil, nil // networks: their observable only
	}
	var ids []string
	for _, h := range match.NewMatcher(got.snap).Match(obs, nil) {
		if id := got.snap.IndicatorID(h.Ref, h.Kind, h.Matched); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// displayName is a short label for an object: its name, value or
// pattern.
func displayName(raw json.RawMessage) string {
	var o struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		Pattern string `json:"pattern"`
		Tier    string `json:"tier"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return ""
	}
	n := cmpOr(o.Name, cmpOr(o.Value, cmpOr(o.Pattern, o.Tier)))
	if len(n) > 200 {
		n = n[:200] + "…"
	}
	return n
}

// ObjectVersion is one stored version of an object in one collection,
// with where it came from.
type ObjectVersion struct {
	Collection string `json:"collection"`
	// CollectionTitle is the collection's alias, else its title.
	CollectionTitle string    `json:"collection_title,omitempty"`
	Version         time.Time `json:"version"`
	DateAdded       time.Time `json:"date_added"`
	// Origin and Peer are the object's provenance, when it was received
	// from another organisation.
	Origin     string    `json:"origin,omitempty"`
	Peer       string    `json:"peer,omitempty"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

// ObjectDetail is everything the dashboard shows of one object.
type ObjectDetail struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Object is the latest version's JSON.
	Object   json.RawMessage `json:"object"`
	Versions []ObjectVersion `json:"versions"`
	// Markings are the latest version's object_marking_refs.
	Markings []string `json:"markings"`
	// Relationships and Sightings refer to the object.
	Relationships []alerting.Edge `json:"relationships"`
	Sightings     []alerting.Edge `json:"sightings"`
}

// maxObjectVersions bounds the versions an ObjectDetail lists per
// collection.
const maxObjectVersions = 100

// ObjectDetail returns object id as the collections p may read hold it
// (analyst or admin): its versions and their sources, its markings, and
// the relationships and sightings that refer to it. ENOTFOUND if p may
// read no version of it.
func (s *Service) ObjectDetail(ctx context.Context, p entente.Principal, id string) (ObjectDetail, error) {
	if err := requireAnalyst(p, "reading object details"); err != nil {
		return ObjectDetail{}, err
	}
	colls, err := s.cfg.Collections(ctx, p)
	if err != nil {
		return ObjectDetail{}, err
	}
	d := ObjectDetail{ID: id, Versions: []ObjectVersion{}, Markings: []string{}, Relationships: []alerting.Edge{}, Sightings: []alerting.Edge{}}
	var latest time.Time
	for _, c := range colls {
		if !c.CanRead(p.Role) {
			continue
		}
		page, err := s.cfg.Release(ctx, p, "", c.ID, entente.ObjectQuery{IDs: []string{id}, Versions: entente.VersionFilter{All: true}, Limit: maxObjectVersions})
		if err != nil {
			return ObjectDetail{}, err
		}
		if len(page.Entries) == 0 {
			continue
		}
		prov, err := s.cfg.Provenance(ctx, c.ID, id)
		if err != nil {
			return ObjectDetail{}, fmt.Errorf("provenance of %s: %w", id, err)
		}
		for _, e := range page.Entries {
			v := ObjectVersion{Collection: c.ID, CollectionTitle: cmpOr(c.Alias, c.Title), Version: e.Version, DateAdded: e.DateAdded}
			for _, pr := range prov {
				if pr.Version.Equal(e.Version) {
					v.Origin, v.Peer, v.ReceivedAt = pr.Origin, pr.Peer, pr.ReceivedAt
				}
			}
			d.Versions = append(d.Versions, v)
			if d.Object == nil || e.Version.After(latest) {
				d.Object, d.Type, latest = e.Raw, e.Type, e.Version
			}
		}
	}
	if d.Object == nil {
		return ObjectDetail{}, entente.Errorf(entente.ENOTFOUND, "no collection you may read holds %q", id)
	}
	var m struct {
		Markings []string `json:"object_marking_refs"`
	}
	if json.Unmarshal(d.Object, &m) == nil && m.Markings != nil {
		d.Markings = m.Markings
	}
	if err := s.cfg.Refs.RefreshRefs(ctx); err != nil {
		return ObjectDetail{}, err
	}
	for _, e := range s.cfg.Refs.Of(id) {
		if e.Type == "sighting" {
			d.Sightings = append(d.Sightings, e)
		} else {
			d.Relationships = append(d.Relationships, e)
		}
	}
	return d, nil
}

// releasedByID yields the latest version of each of ids (of types, when
// not empty) in collection, through release, asking for them in chunks
// of 500; an error ends the sequence.
func (s *Service) releasedByID(ctx context.Context, p entente.Principal, collection string, ids, types []string) iter.Seq2[entente.ObjectEntry, error] {
	return func(yield func(entente.ObjectEntry, error) bool) {
		for chunk := range slices.Chunk(ids, 500) {
			page, err := s.cfg.Release(ctx, p, "", collection, entente.ObjectQuery{IDs: chunk, Types: types, Limit: len(chunk) + 1})
			if err != nil {
				yield(entente.ObjectEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}
