package storetest

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/gunzip"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/testutil"
)

//go:embed testdata/search.txt
var searchCases string

// RunSearch runs the conformance suite of [store.SearchStore] against
// stores made by open.
func RunSearch(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Cases", testSearchCases},
		{"Versions", testSearchVersions},
		{"Browse", testSearchBrowse},
		{"RankedPaging", testSearchRankedPaging},
		{"Invalid", testSearchInvalid},
		{"TimeRange", testSearchTimeRange},
		{"ExactAmongMany", testSearchExactAmongMany},
		{"Frequencies", testSearchFrequencies},
		{"FilteredAmongMany", testSearchFilteredAmongMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func searchStore(t *testing.T, s store.Store) store.SearchStore {
	t.Helper()
	ss, ok := s.(store.SearchStore)
	if !ok {
		t.Fatalf("%T is not a store.SearchStore", s)
	}
	return ss
}

var (
	attackOnce sync.Once
	attackRaws []json.RawMessage
	attackErr  error
)

func attackSubset(path string) ([]json.RawMessage, error) {
	attackOnce.Do(func() { attackRaws, attackErr = readATTACKSubset(path) })
	return attackRaws, attackErr
}

func readATTACKSubset(path string) ([]json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gunzip.Open(f, path, gunzip.Limits{MaxSize: 1 << 30})
	if err != nil {
		return nil, err
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.NewDecoder(zr).Decode(&bundle); err != nil {
		return nil, err
	}
	keep := []string{"intrusion-set", "attack-pattern", "malware", "x-mitre-tactic"}
	var out []json.RawMessage
	for _, raw := range bundle.Objects {
		var o struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &o) == nil && slices.Contains(keep, o.Type) {
			out = append(out, raw)
		}
	}
	return out, nil
}

// ATTACKSubset returns the ATT&CK Enterprise intrusion sets, malware,
// tactics and techniques, decoded; it skips t when the shared data is
// absent.
func ATTACKSubset(t testing.TB) []*stix.Object {
	t.Helper()
	raws, err := attackSubset(testutil.SharedData(t, "attack", "enterprise-attack-18.1.json.gz"))
	if err != nil {
		t.Fatalf("ATT&CK data: %v", err)
	}
	objs := make([]*stix.Object, len(raws))
	for i, raw := range raws {
		if objs[i], err = stix.Decode(raw); err != nil {
			t.Fatalf("ATT&CK object %d: %v", i, err)
		}
	}
	return objs
}

// searchObject decodes a test object given as a map.
func searchObject(t *testing.T, m map[string]any) *stix.Object {
	t.Helper()
	m["spec_version"] = "2.1"
	if _, ok := m["created"]; !ok {
		m["created"] = stix.FormatTimestamp(v(0))
	}
	if _, ok := m["modified"]; !ok {
		m["modified"] = m["created"]
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	o, err := stix.Decode(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return o
}

const (
	searchA = "5b1f0d5e-0000-4000-8000-00000000000a"
	searchB = "5b1f0d5e-0000-4000-8000-00000000000b"
)

func fillSearch(t *testing.T, s store.Store) {
	t.Helper()
	newCollection(t, s, searchA)
	if err := s.CreateCollection(ctx(t), entente.Collection{ID: searchB, Alias: "b-alias", Title: "B",
		ReadRoles: []entente.Role{entente.RoleAnalyst}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	add(t, s, searchA, ATTACKSubset(t)...)
	amber := stix.TLPAmber.MarkingID()
	add(t, s, searchA,
		searchObject(t, map[string]any{"type": "indicator", "id": "indicator--6c1a3a6e-0000-4000-8000-000000000001",
			"name": "Watering hole landing page", "pattern": "[domain-name:value = 'evil.example.com']", "pattern_type": "stix",
			"valid_from": stix.FormatTimestamp(v(0)), "labels": []string{"malicious-activity"}}),
		searchObject(t, map[string]any{"type": "indicator", "id": "indicator--6c1a3a6e-0000-4000-8000-000000000002",
			"pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix", "valid_from": stix.FormatTimestamp(v(0)),
			"object_marking_refs": []string{amber}}),
	)
	add(t, s, searchB, searchObject(t, map[string]any{"type": "vulnerability", "id": "vulnerability--6c1a3a6e-0000-4000-8000-000000000003",
		"name": "Log4Shell", "created_by_ref": "identity--6c1a3a6e-0000-4000-8000-0000000000aa",
		"external_references": []map[string]string{{"source_name": "cve", "external_id": "CVE-2021-44228"}}}))
}

func search(t *testing.T, s store.Store, q store.SearchQuery) store.SearchPage {
	t.Helper()
	p, err := searchStore(t, s).SearchObjects(ctx(t), q)
	if err != nil {
		t.Fatalf("SearchObjects(%+v): %v", q, err)
	}
	return p
}

// testSearchCases runs testdata/search.txt: names, aliases, external
// ids, observable values in patterns, prefixes, and every filter.
func testSearchCases(t *testing.T, s store.Store) {
	fillSearch(t, s)
	sc := bufio.NewScanner(strings.NewReader(searchCases))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		parts := strings.Split(text, "|")
		if len(parts) != 3 {
			t.Fatalf("search.txt:%d: want query | filters | id", line)
		}
		q := store.SearchQuery{Text: strings.TrimSpace(parts[0]), Limit: 5}
		for f := range strings.FieldsSeq(parts[1]) {
			k, val, _ := strings.Cut(f, "=")
			switch k {
			case "type":
				q.Types = append(q.Types, val)
			case "tlp":
				q.TLPs = append(q.TLPs, val)
			case "source":
				q.Sources = append(q.Sources, val)
			case "collection":
				q.Collections = append(q.Collections, map[string]string{"a": searchA, "b": "b-alias"}[val])
			default:
				t.Fatalf("search.txt:%d: unknown filter %q", line, k)
			}
		}
		want := strings.TrimSpace(parts[2])
		got := search(t, s, q)
		var ids []string
		for _, h := range got.Hits {
			ids = append(ids, h.ID)
			if h.Title == "" || h.Title == h.ID {
				t.Errorf("search.txt:%d: hit %s has title %q", line, h.ID, h.Title)
			}
		}
		switch {
		case want == "-" && len(ids) > 0:
			t.Errorf("search.txt:%d: %q found %v, want nothing", line, q.Text, ids)
		case want != "-" && (len(ids) == 0 || ids[0] != want):
			t.Errorf("search.txt:%d: %q found %v, want %s first", line, q.Text, ids, want)
		}
	}
	// A hit says where it is and what it is.
	got := search(t, s, store.SearchQuery{Text: "198.51.100.7"})
	if len(got.Hits) != 1 {
		t.Fatalf("198.51.100.7: %d hits", len(got.Hits))
	}
	h := got.Hits[0]
	if h.Collection != searchA || h.Type != "indicator" || h.TLP != "amber" || h.Title != "[ipv4-addr:value = '198.51.100.7']" || !h.Modified.Equal(v(0)) || h.Score <= 0 {
		t.Errorf("hit = %+v", h)
	}
	got = search(t, s, store.SearchQuery{Text: "Log4Shell"})
	if len(got.Hits) != 1 || got.Hits[0].Collection != searchB || got.Hits[0].Source != "identity--6c1a3a6e-0000-4000-8000-0000000000aa" {
		t.Errorf("Log4Shell: %+v", got.Hits)
	}
}

// testSearchVersions checks that only the latest version is found, that a
// new version replaces the old one's words, and that deleting removes it
// (and makes the previous version the one found).
func testSearchVersions(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	id := "intrusion-set--6c1a3a6e-0000-4000-8000-000000000010"
	mk := func(n int, name string) *stix.Object {
		return searchObject(t, map[string]any{"type": "intrusion-set", "id": id, "name": name,
			"created": stix.FormatTimestamp(v(0)), "modified": stix.FormatTimestamp(v(n))})
	}
	add(t, s, coll, mk(0, "Umbrella Otter"))
	add(t, s, coll, mk(1, "Velvet Heron"))
	if got := search(t, s, store.SearchQuery{Text: "Otter"}); len(got.Hits) != 0 {
		t.Errorf("the old name is still found: %+v", got.Hits)
	}
	got := search(t, s, store.SearchQuery{Text: "velvet heron"})
	if len(got.Hits) != 1 || !got.Hits[0].Modified.Equal(v(1)) || got.Hits[0].Title != "Velvet Heron" {
		t.Fatalf("new name: %+v", got.Hits)
	}
	// An older version arriving late changes nothing.
	add(t, s, coll, searchObject(t, map[string]any{"type": "intrusion-set", "id": id, "name": "Late Lemur",
		"created": stix.FormatTimestamp(v(0)), "modified": stix.FormatTimestamp(v(-1))}))
	if got := search(t, s, store.SearchQuery{Text: "Lemur"}); len(got.Hits) != 0 {
		t.Errorf("an older version is found: %+v", got.Hits)
	}
	if _, err := s.DeleteObjects(ctx(t), coll, id, entente.VersionFilter{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, store.SearchQuery{Text: "Velvet"}); len(got.Hits) != 0 {
		t.Errorf("a deleted version is found: %+v", got.Hits)
	}
	if got := search(t, s, store.SearchQuery{Text: "Otter"}); len(got.Hits) != 1 || !got.Hits[0].Modified.Equal(v(0)) {
		t.Errorf("after deleting the latest, the version now latest is not found: %+v", got.Hits)
	}
	if _, err := s.DeleteObjects(ctx(t), coll, id, entente.VersionFilter{All: true}, nil); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, store.SearchQuery{Text: "Otter"}); len(got.Hits) != 0 {
		t.Errorf("after deleting every version: %+v", got.Hits)
	}
}

// testSearchBrowse pages through the browse list of one type: newest
// modified first, every object once, other types left out.
func testSearchBrowse(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	var objs []*stix.Object
	for i := range 23 {
		o := Object(t, "indicator", indicatorID(i), v(i%7))
		objs = append(objs, o)
	}
	objs = append(objs, Object(t, "malware", "malware--00000000-0000-4000-8000-000000000001", v(100)))
	add(t, s, coll, objs...)
	var got []store.SearchHit
	q := store.SearchQuery{Types: []string{"indicator"}, Limit: 5}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		p := search(t, s, q)
		if len(p.Hits) > 5 {
			t.Fatalf("%d hits for limit 5", len(p.Hits))
		}
		got = append(got, p.Hits...)
		if p.Next == "" {
			break
		}
		q.Next = p.Next
	}
	if len(got) != 23 {
		t.Fatalf("browse found %d indicators, want 23", len(got))
	}
	seen := map[string]bool{}
	for i, h := range got {
		if h.Type != "indicator" || seen[h.ID] {
			t.Fatalf("hit %d: %+v (type or duplicate)", i, h)
		}
		seen[h.ID] = true
		if i > 0 && h.Modified.After(got[i-1].Modified) {
			t.Fatalf("hit %d is newer than the one before it", i)
		}
	}
	all := search(t, s, store.SearchQuery{Limit: 100})
	if len(all.Hits) != 24 || all.Hits[0].Type != "malware" {
		t.Fatalf("browse of every type: %d hits, first %+v", len(all.Hits), all.Hits[0])
	}
}

// testSearchRankedPaging pages through ranked results without losing or
// repeating one.
func testSearchRankedPaging(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	var objs []*stix.Object
	for i := range 12 {
		id := indicatorID(500 + i)
		objs = append(objs, searchObject(t, map[string]any{"type": "indicator", "id": id, "name": "Quokka dropper",
			"pattern": "[file:name = 'q.exe']", "pattern_type": "stix", "valid_from": stix.FormatTimestamp(v(0)),
			"description": strings.Repeat("quokka ", i+1)}))
	}
	add(t, s, coll, objs...)
	q := store.SearchQuery{Text: "quokka", Limit: 5}
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		p := search(t, s, q)
		for _, h := range p.Hits {
			if seen[h.ID] {
				t.Fatalf("%s twice", h.ID)
			}
			seen[h.ID] = true
		}
		if p.Next == "" {
			break
		}
		q.Next = p.Next
	}
	if len(seen) != 12 {
		t.Fatalf("ranked paging found %d, want 12", len(seen))
	}
}

// testSearchInvalid checks the errors: a cursor of another kind of query
// or none at all, and a text without words.
func testSearchInvalid(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	add(t, s, coll, Indicators(t, 0, 3)...)
	ss := searchStore(t, s)
	browse, err := ss.SearchObjects(ctx(t), store.SearchQuery{Limit: 1})
	if err != nil || browse.Next == "" {
		t.Fatalf("browse: %+v, %v", browse, err)
	}
	for _, q := range []store.SearchQuery{
		{Text: "x", Next: browse.Next},
		{Next: "not-a-cursor"},
		{Text: "---"},
		{Text: "  "},
	} {
		if q.Text == "  " {
			// Blank text is the browse list, not an error.
			if _, err := ss.SearchObjects(ctx(t), store.SearchQuery{Text: ""}); err != nil {
				t.Errorf("empty text: %v", err)
			}
			continue
		}
		if _, err := ss.SearchObjects(ctx(t), q); entente.ErrorCode(err) != entente.EINVALID {
			t.Errorf("SearchObjects(%+v): err = %v, want EINVALID", q, err)
		}
	}
	if got := search(t, s, store.SearchQuery{Collections: []string{"no-such-collection"}}); len(got.Hits) != 0 {
		t.Errorf("unknown collection: %+v", got.Hits)
	}
}

// testSearchTimeRange checks Since (inclusive) and Until (exclusive) on
// the version, in search and in browse.
func testSearchTimeRange(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	var objs []*stix.Object
	for i := range 5 {
		objs = append(objs, searchObject(t, map[string]any{"type": "indicator", "id": indicatorID(i), "name": "Range marmot",
			"pattern": "[file:name = 'm.exe']", "pattern_type": "stix", "valid_from": stix.FormatTimestamp(v(0)),
			"created": stix.FormatTimestamp(v(i)), "modified": stix.FormatTimestamp(v(i))}))
	}
	add(t, s, coll, objs...)
	for _, text := range []string{"", "marmot"} {
		got := search(t, s, store.SearchQuery{Text: text, Since: v(1), Until: v(3)})
		var ids []string
		for _, h := range got.Hits {
			ids = append(ids, h.ID)
		}
		slices.Sort(ids)
		if want := []string{indicatorID(1), indicatorID(2)}; !slices.Equal(ids, want) {
			t.Errorf("text %q since v(1) until v(3): %v, want %v", text, ids, want)
		}
	}
}

// testSearchExactAmongMany checks that an object whose name is the whole
// text comes first even when more than a thousand newer objects mention
// it (a backend may rank only the newest matches of a common word, but
// not at the cost of the object named).
func testSearchExactAmongMany(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	named := searchObject(t, map[string]any{"type": "malware", "id": "malware--6c1a3a6e-0000-4000-8000-000000000077", "name": "Wombat", "is_family": true})
	add(t, s, coll, named)
	var objs []*stix.Object
	for i := range 2500 {
		objs = append(objs, searchObject(t, map[string]any{"type": "indicator", "id": indicatorID(1000 + i), "name": "Wombat C2 " + strconv.Itoa(i),
			"pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": stix.FormatTimestamp(v(0)),
			"created": stix.FormatTimestamp(v(1)), "modified": stix.FormatTimestamp(v(1))}))
	}
	add(t, s, coll, objs...)
	got := search(t, s, store.SearchQuery{Text: "wombat", Limit: 10})
	if len(got.Hits) != 10 || got.Hits[0].ID != named.ID || got.Next == "" {
		t.Fatalf("wombat: %d hits, first %+v, next %q", len(got.Hits), got.Hits[0], got.Next)
	}
	// Its next page does not repeat it.
	next := search(t, s, store.SearchQuery{Text: "wombat", Limit: 10, Next: got.Next})
	for _, h := range next.Hits {
		if h.ID == named.ID {
			t.Errorf("the named object is on the second page too")
		}
	}
	if len(next.Hits) != 10 {
		t.Errorf("second page: %d hits", len(next.Hits))
	}
	// What is typed so far of the word finds them too (as a prefix: the
	// text itself is no word of theirs), a page at a time.
	pre := search(t, s, store.SearchQuery{Text: "womb", Limit: 10})
	if len(pre.Hits) != 10 || pre.Next == "" {
		t.Fatalf("womb: %d hits, next %q", len(pre.Hits), pre.Next)
	}
	for _, h := range pre.Hits {
		if !strings.HasPrefix(h.Title, "Wombat") {
			t.Errorf("womb: %s (%q) found", h.ID, h.Title)
		}
	}
}

// testSearchFrequencies checks that words of every frequency are found
// among 12,000 objects, wherever they stand in time: a word only the
// oldest three hold, one in every 40th (all 300 reachable page by page),
// one in every other (a page of the newest), the rare word under a type
// filter. A backend that looks at the newest objects first and the index
// only for rarer words (PostgreSQL) takes each of its paths here.
func testSearchFrequencies(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	const n = 12000
	objs := make([]*stix.Object, 0, n)
	for i := range n {
		name := "Sample " + strconv.Itoa(i)
		if i < 3 {
			name += " aardvark"
		}
		if i%40 == 7 {
			name += " midway"
		}
		if i%2 == 0 {
			name += " commonplace"
		}
		at := v(0).Add(time.Duration(i) * time.Millisecond)
		objs = append(objs, searchObject(t, map[string]any{"type": "indicator", "id": indicatorID(100000 + i), "name": name,
			"pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": stix.FormatTimestamp(at),
			"created": stix.FormatTimestamp(at), "modified": stix.FormatTimestamp(at)}))
	}
	add(t, s, coll, objs...)
	all := func(q store.SearchQuery) []store.SearchHit {
		t.Helper()
		var hits []store.SearchHit
		for {
			p := search(t, s, q)
			hits = append(hits, p.Hits...)
			if p.Next == "" {
				return hits
			}
			q.Next = p.Next
		}
	}
	if got := all(store.SearchQuery{Text: "aardvark", Limit: 50}); len(got) != 3 {
		t.Errorf("aardvark (the 3 oldest): %d hits", len(got))
	}
	if got := all(store.SearchQuery{Text: "aardvark", Types: []string{"indicator"}, Limit: 50}); len(got) != 3 {
		t.Errorf("aardvark among indicators: %d hits", len(got))
	}
	if got := all(store.SearchQuery{Text: "aardvark", Types: []string{"malware"}, Limit: 50}); len(got) != 0 {
		t.Errorf("aardvark among malware: %d hits", len(got))
	}
	mid := all(store.SearchQuery{Text: "midway", Limit: 100})
	seen := map[string]bool{}
	for _, h := range mid {
		if !strings.Contains(h.Title, "midway") {
			t.Errorf("midway: %s (%q) found", h.ID, h.Title)
		}
		seen[h.ID] = true
	}
	if len(seen) != n/40 {
		t.Errorf("midway (every 40th): %d distinct hits in %d, want %d", len(seen), len(mid), n/40)
	}
	common := search(t, s, store.SearchQuery{Text: "commonplace", Limit: 50})
	if len(common.Hits) != 50 || common.Next == "" {
		t.Fatalf("commonplace: %d hits, next %q", len(common.Hits), common.Next)
	}
	for _, h := range common.Hits {
		if !strings.Contains(h.Title, "commonplace") {
			t.Errorf("commonplace: %s (%q) found", h.ID, h.Title)
		}
	}
}

// testSearchFilteredAmongMany checks that a filtered search finds the
// older objects that pass its filters and merely mention the text even
// when more than a thousand newer objects that the filters exclude
// mention it too (a backend that ranks only the newest matches of a
// common word picks them among those that pass the filters).
func testSearchFilteredAmongMany(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	newCollection(t, s, searchB)
	const source = "identity--6c1a3a6e-0000-4000-8000-0000000000bb"
	loader := searchObject(t, map[string]any{"type": "malware", "id": "malware--6c1a3a6e-0000-4000-8000-000000000088", "name": "Numbat loader",
		"is_family": true, "created_by_ref": source, "created": stix.FormatTimestamp(v(0)), "modified": stix.FormatTimestamp(v(0))})
	add(t, s, coll, loader)
	dropper := searchObject(t, map[string]any{"type": "tool", "id": "tool--6c1a3a6e-0000-4000-8000-000000000089", "name": "Numbat dropper",
		"created": stix.FormatTimestamp(v(0)), "modified": stix.FormatTimestamp(v(0))})
	add(t, s, searchB, dropper)
	var objs []*stix.Object
	for i := range 1500 {
		objs = append(objs, searchObject(t, map[string]any{"type": "indicator", "id": indicatorID(5000 + i), "name": "Numbat C2 " + strconv.Itoa(i),
			"pattern": "[ipv4-addr:value = '198.51.100.2']", "pattern_type": "stix", "valid_from": stix.FormatTimestamp(v(0)),
			"created": stix.FormatTimestamp(v(2)), "modified": stix.FormatTimestamp(v(2))}))
	}
	add(t, s, coll, objs...)
	for _, c := range []struct {
		name string
		q    store.SearchQuery
		want string
	}{
		{"type", store.SearchQuery{Text: "numbat", Types: []string{"malware"}}, loader.ID},
		{"type, a prefix", store.SearchQuery{Text: "numb", Types: []string{"malware"}}, loader.ID},
		{"two words, type", store.SearchQuery{Text: "numbat load", Types: []string{"malware"}}, loader.ID},
		{"source", store.SearchQuery{Text: "numbat", Sources: []string{source}}, loader.ID},
		{"until", store.SearchQuery{Text: "numbat", Types: []string{"malware", "tool"}, Until: v(1)}, ""},
		{"collection", store.SearchQuery{Text: "numbat", Collections: []string{searchB}}, dropper.ID},
	} {
		c.q.Limit = 10
		got := search(t, s, c.q)
		var ids []string
		for _, h := range got.Hits {
			ids = append(ids, h.ID)
		}
		want := []string{c.want}
		if c.want == "" {
			want = []string{loader.ID, dropper.ID}
		}
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("%s: %v, want %v", c.name, ids, want)
		}
	}
	// Unfiltered, the newest matches come first as before.
	if got := search(t, s, store.SearchQuery{Text: "numbat", Limit: 10}); len(got.Hits) != 10 || got.Hits[0].Type != "indicator" {
		t.Errorf("numbat: %+v", got.Hits)
	}
}
