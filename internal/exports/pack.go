package exports

import (
	"math"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
)

// The export index keeps its items packed, without pointers: a million
// items are ~80 MB the garbage collector never scans, instead of ~500 MB
// of strings and slices it would mark on every cycle of every export.
// Values and ids live in string chunks (one per catch-up batch) that
// packed items refer to by offset; repeated strings (kinds, countries)
// and lists (sources, labels, warninglists) are interned.

// strRef is a substring of one of a packedItems' chunks.
type strRef struct{ chunk, off, n uint32 }

// packedItem is an export.Item without pointers.
type packedItem struct {
	value, id                       strRef
	kind, country                   uint32 // interned strings
	sources, labels, warning        uint32 // interned lists (0: none)
	confidence                      int32
	tlp                             int8
	revoked                         bool
	validFrom, validUntil, modified int64 // Unix ns, noTime for the zero time
}

const noTime = math.MinInt64

// indexEntry is the latest version of one indicator and the range of its
// items in packedItems.items.
type indexEntry struct {
	id       strRef
	version  int64
	first, n uint32
}

// packedItems holds the entries and items of one collection's index.
type packedItems struct {
	chunks   []string
	strs     []string
	strIdx   map[string]uint32
	lists    [][]string
	listIdx  map[string]uint32
	entries  []indexEntry      // in the order first seen
	byHash   map[uint64]uint32 // entry by hash of the object id
	overflow map[string]uint32 // entries whose id hash collides
	items    []packedItem
	dead     int // items no entry refers to any more
	// building is the chunk being filled by the current batch.
	building []byte
}

func newPackedItems() *packedItems {
	return &packedItems{strIdx: map[string]uint32{}, listIdx: map[string]uint32{}, lists: [][]string{nil},
		byHash: map[uint64]uint32{}, overflow: map[string]uint32{}}
}

// str returns the string r refers to (a substring: no copy, except in
// the chunk still being built).
func (p *packedItems) str(r strRef) string {
	if int(r.chunk) == len(p.chunks) {
		return string(p.building[r.off : r.off+r.n])
	}
	return p.chunks[r.chunk][r.off : r.off+r.n]
}

// lookup returns the entry of object id.
func (p *packedItems) lookup(id string) (*indexEntry, bool) {
	if i, ok := p.overflow[id]; ok {
		return &p.entries[i], true
	}
	i, ok := p.byHash[hashID(id)]
	if !ok || p.str(p.entries[i].id) != id {
		return nil, false
	}
	return &p.entries[i], true
}

// has reports whether version (or a later one) of object id is indexed.
func (p *packedItems) has(id string, version int64) bool {
	e, ok := p.lookup(id)
	return ok && version <= e.version
}

func hashID(id string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	return h
}

// put records the items of the latest version of object id. Strings go
// into the chunk being built: call seal when the batch is done.
func (p *packedItems) put(id string, version int64, items []export.Item) {
	e, ok := p.lookup(id)
	if !ok {
		p.entries = append(p.entries, indexEntry{id: p.pending(id)})
		i := uint32(len(p.entries) - 1)
		if _, taken := p.byHash[hashID(id)]; taken {
			p.overflow[id] = i
		} else {
			p.byHash[hashID(id)] = i
		}
		e = &p.entries[i]
	}
	p.dead += int(e.n)
	e.version, e.first, e.n = version, uint32(len(p.items)), uint32(len(items))
	for i := range items {
		it := &items[i]
		p.items = append(p.items, packedItem{
			value: p.pending(it.Value), id: e.id, kind: p.intern(string(it.Kind)), country: p.intern(it.Country),
			sources: p.list(it.Sources), labels: p.list(it.Labels), warning: p.list(it.Warning),
			confidence: int32(it.Confidence), tlp: int8(it.TLP), revoked: it.Revoked,
			validFrom: packTime(it.ValidFrom), validUntil: packTime(it.ValidUntil), modified: packTime(it.Modified),
		})
	}
}

// pending appends s to the chunk being built and returns its reference
// (valid once seal has run).
func (p *packedItems) pending(s string) strRef {
	r := strRef{chunk: uint32(len(p.chunks)), off: uint32(len(p.building)), n: uint32(len(s))}
	p.building = append(p.building, s...)
	return r
}

// seal turns the chunk being built into a string, and compacts the items
// when more are dead than live.
func (p *packedItems) seal() {
	if len(p.building) > 0 {
		p.chunks = append(p.chunks, string(p.building))
		p.building = p.building[:0]
	}
	if p.dead > len(p.items)/2 && p.dead > 1024 {
		live := make([]packedItem, 0, len(p.items)-p.dead)
		for i := range p.entries {
			e := &p.entries[i]
			first := uint32(len(live))
			live = append(live, p.items[e.first:e.first+e.n]...)
			e.first = first
		}
		p.items, p.dead = live, 0
	}
}

func (p *packedItems) intern(s string) uint32 {
	if i, ok := p.strIdx[s]; ok {
		return i
	}
	i := uint32(len(p.strs))
	p.strs = append(p.strs, s)
	p.strIdx[s] = i
	return i
}

func (p *packedItems) list(l []string) uint32 {
	if len(l) == 0 {
		return 0
	}
	key := strings.Join(l, "\x00")
	if i, ok := p.listIdx[key]; ok {
		return i
	}
	i := uint32(len(p.lists))
	p.lists = append(p.lists, l)
	p.listIdx[key] = i
	return i
}

func packTime(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixNano()
}

func unpackTime(n int64) time.Time {
	if n == noTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// item returns packed item pi as an export.Item of collection.
func (p *packedItems) item(pi *packedItem, collection string) export.Item {
	return export.Item{
		Kind: observable.Kind(p.strs[pi.kind]), Value: p.str(pi.value), IndicatorID: p.str(pi.id),
		Confidence: int(pi.confidence), TLP: stix.TLP(pi.tlp),
		Sources: p.lists[pi.sources], Labels: p.lists[pi.labels], Warning: p.lists[pi.warning],
		Collection: collection, Country: p.strs[pi.country],
		ValidFrom: unpackTime(pi.validFrom), ValidUntil: unpackTime(pi.validUntil), Modified: unpackTime(pi.modified),
		Revoked: pi.revoked,
	}
}
