package store

import (
	"math"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// Backends keep every timestamp (versions, date_added, creation times) as
// int64 Unix nanoseconds: SQL timestamp types lose nanoseconds, and STIX
// versions must compare exactly.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// UnixNano returns t as Unix nanoseconds and whether t is representable
// (between the years 1678 and 2262).
func UnixNano(t time.Time) (int64, bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, false
	}
	return t.UnixNano(), true
}

// FromUnixNano returns the UTC time of n Unix nanoseconds.
func FromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// PageLimit returns the page size to use for a requested limit: the
// limit itself, capped at MaxPageSize, or MaxPageSize when it is not
// positive.
func PageLimit(limit int) int {
	if limit <= 0 || limit > MaxPageSize {
		return MaxPageSize
	}
	return limit
}

// Existing is one version of an object already stored in a collection, as
// a backend reads it to plan an addition.
type Existing struct {
	ID        string
	Version   int64
	DateAdded int64
	Seq       int64
	Latest    bool
	First     bool
}

// NewEntry is one entry an addition writes.
type NewEntry struct {
	Obj     *stix.Object
	Version int64
	Latest  bool
	First   bool
}

// AddPlan is what a backend must do, inside its write transaction, to add
// a batch of objects: insert Inserts in order (their sequence numbers
// then follow input order), and clear the latest and first flags of the
// stored entries listed by sequence number.
type AddPlan struct {
	Outcomes    []entente.AddOutcome
	Inserts     []NewEntry
	ClearLatest []int64
	ClearFirst  []int64
}

// PlanAdd decides, without I/O, how adding objs with date_added dateAdded
// changes a collection whose stored versions of the same ids are
// existing. An object whose (id, version) is already stored, or appears
// earlier in objs, is a Duplicate. New versions move the latest and
// first flags. It returns an EINVALID *entente.Error naming the object
// when an object has no id or type or a version outside the storable
// range.
func PlanAdd(objs []*stix.Object, dateAdded int64, existing []Existing) (AddPlan, error) {
	// One state per id, all in one slice (it never grows past its
	// capacity, so the pointers into it stay valid): the writer plans
	// every addition, and an id with a map of its own was two to three
	// allocations per object, a quarter of the bytes the writer
	// allocated for a TAXII POST.
	states := make([]planState, 0, len(objs)+len(existing))
	ids := make(map[string]*planState, len(objs))
	get := func(id string) *planState {
		s := ids[id]
		if s == nil {
			states = append(states, planState{})
			s = &states[len(states)-1]
			ids[id] = s
		}
		return s
	}
	for _, e := range existing {
		s := get(e.ID)
		s.add(e.Version, e.DateAdded)
		if e.Latest {
			s.latest, s.latestRef = e.Version, e.Seq
		}
		if e.First {
			s.first, s.firstRef = e.Version, e.Seq
		}
	}
	p := AddPlan{Outcomes: make([]entente.AddOutcome, len(objs))}
	for i, o := range objs {
		if o == nil || o.ID == "" || o.Type == "" {
			id := ""
			if o != nil {
				id = o.ID
			}
			return AddPlan{}, entente.Errorf(entente.EINVALID, "object %d (%q): id and type are required", i, id)
		}
		vt := o.Version()
		v := dateAdded
		if !vt.IsZero() {
			var ok bool
			if v, ok = UnixNano(vt); !ok {
				return AddPlan{}, entente.Errorf(entente.EINVALID, "object %s: version %s is outside the storable range (years 1678-2262)", o.ID, stix.FormatTimestamp(vt))
			}
		}
		out := entente.AddOutcome{ID: o.ID, Version: FromUnixNano(v), DateAdded: FromUnixNano(dateAdded)}
		s := get(o.ID)
		if da, dup := s.dateAdded(v); dup {
			out.Duplicate = true
			out.DateAdded = FromUnixNano(da)
			p.Outcomes[i] = out
			continue
		}
		ref := -int64(len(p.Inserts) + 1)
		e := NewEntry{Obj: o, Version: v}
		if s.n == 0 {
			e.Latest, e.First = true, true
			s.latest, s.latestRef, s.first, s.firstRef = v, ref, v, ref
		} else {
			if v > s.latest {
				p.clearLatest(s.latestRef)
				e.Latest = true
				s.latest, s.latestRef = v, ref
			}
			if v < s.first {
				p.clearFirst(s.firstRef)
				e.First = true
				s.first, s.firstRef = v, ref
			}
		}
		s.add(v, dateAdded)
		if p.Inserts == nil {
			p.Inserts = make([]NewEntry, 0, len(objs))
		}
		p.Inserts = append(p.Inserts, e)
		p.Outcomes[i] = out
	}
	return p, nil
}

// planState is what PlanAdd knows of one id: its versions (stored or
// planned) with their date_added, and where its latest and first flags
// are.
type planState struct {
	// v0 and da0 are the first version known and its date_added (most
	// ids have one); more holds the others, n counts them all.
	v0, da0 int64
	more    map[int64]int64
	n       int
	latest  int64 // version
	first   int64
	// latestRef and firstRef point at the entry holding the flag: a
	// stored sequence number (>0) or -(index+1) into Inserts.
	latestRef, firstRef int64
}

// dateAdded returns the date_added of version v and whether it is known.
func (s *planState) dateAdded(v int64) (int64, bool) {
	if s.n > 0 && s.v0 == v {
		return s.da0, true
	}
	da, ok := s.more[v]
	return da, ok
}

// add records version v, not known yet, with its date_added.
func (s *planState) add(v, da int64) {
	switch {
	case s.n == 0:
		s.v0, s.da0 = v, da
	case s.more == nil:
		s.more = map[int64]int64{v: da}
	default:
		s.more[v] = da
	}
	s.n++
}

func (p *AddPlan) clearLatest(ref int64) {
	if ref < 0 {
		p.Inserts[-ref-1].Latest = false
	} else if ref > 0 {
		p.ClearLatest = append(p.ClearLatest, ref)
	}
}

func (p *AddPlan) clearFirst(ref int64) {
	if ref < 0 {
		p.Inserts[-ref-1].First = false
	} else if ref > 0 {
		p.ClearFirst = append(p.ClearFirst, ref)
	}
}

// scanTypes are the object types the node reads as they arrive, whatever
// else a collection holds (relationships for threats, sightings for
// correlation): each backend keeps a partial index of their rows in
// date_added order (migration 0900).
var scanTypes = [...]string{"relationship", "sighting"}

// ScanType returns the one type a type filter names when it is one of the
// types with their own partial index, so a backend can name it literally
// in its query (a planner uses a partial index only for a literal it can
// match). ok is false for any other filter.
func ScanType(types []string) (string, bool) {
	if len(types) != 1 {
		return "", false
	}
	for _, t := range scanTypes {
		if types[0] == t {
			return t, true
		}
	}
	return "", false
}
