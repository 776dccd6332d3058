package feed

import (
	"net/netip"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
)

// batch imports one input into an Importer.
type batch struct {
	im      *Importer
	name    string
	opts    Options
	now     time.Time
	nowTS   string
	source  string
	tlp     []string // default marking refs
	res     Result
	serial  uint64
	ts      tsCache
	scratch []byte
}

// tsCache remembers the last few formatted timestamps (most objects of
// one input share them).
type tsCache struct {
	t [4]time.Time
	s [4]string
	n int
}

func (c *tsCache) format(t time.Time) string {
	for i := range c.t {
		if c.s[i] != "" && c.t[i].Equal(t) {
			return c.s[i]
		}
	}
	s := stix.FormatTimestamp(t)
	c.t[c.n], c.s[c.n] = t, s
	c.n = (c.n + 1) % len(c.t)
	return s
}

// malicious is the indicator_types of every indicator (shared, never
// appended to).
var malicious = []string{"malicious-activity"}

func (im *Importer) newBatch(name string, opts Options) *batch {
	im.serial++
	b := &batch{im: im, name: name, opts: opts, now: opts.Now, serial: im.serial}
	if b.now.IsZero() {
		b.now = time.Now().UTC()
	}
	b.nowTS = stix.FormatTimestamp(b.now)
	b.source = opts.Source
	if b.source == "" {
		b.source = name
	}
	if opts.TLP != nil {
		b.tlp = []string{opts.TLP.MarkingID()}
	}
	b.res.Stats.Skipped = map[string]int{}
	b.res.Stats.WarninglistHits = map[string]int{}
	return b
}

func (b *batch) reject(where, reason string) {
	b.res.Stats.Rejected++
	if len(b.res.Rejected) < maxRejects {
		b.res.Rejected = append(b.res.Rejected, Reject{Where: where, Reason: reason})
	}
}

func (b *batch) finish() {
	if len(b.res.Stats.Skipped) == 0 {
		b.res.Stats.Skipped = nil
	}
	if len(b.res.Stats.WarninglistHits) == 0 {
		b.res.Stats.WarninglistHits = nil
	}
}

// obs is one normalised observable value to import, with what the source
// says about it.
type obs struct {
	kind        observable.Kind
	value       string
	indicator   bool
	validFrom   time.Time // zero: now
	validUntil  time.Time // zero: validFrom + DefaultValidFor
	created     time.Time // zero: validFrom
	confidence  int       // < 0: Options.Confidence
	labels      []string
	ref         ExtRef
	markings    []string // nil: the default TLP
	description string
	createdBy   string
}

// add imports o: its SCO and, when o.indicator, its indicator (merged with
// any earlier one of the same id). It returns the indicator's id, or "".
func (b *batch) add(o obs) string {
	if o.kind != URLPath {
		scoID, sco := sco(&b.scratch, o.kind, o.value)
		b.im.addOther(scoID, sco)
		b.res.Stats.Observables++
	}
	if !o.indicator {
		return ""
	}
	pat := Pattern(o.kind, o.value)
	id := typedUUID5(&b.scratch, "indicator", IndicatorNamespace, pat)
	old := b.im.ind[id]
	if old != nil && old.batch == b.serial {
		b.res.Stats.Duplicates++
	} else {
		b.res.Stats.Indicators++
	}
	vf := o.validFrom
	if vf.IsZero() {
		vf = b.now
	}
	created := o.created
	if created.IsZero() {
		created = vf
	}
	vu := o.validUntil
	if vu.IsZero() {
		d, ok := b.opts.DefaultValidFor[o.kind]
		if !ok {
			d = DefaultValidFor[o.kind]
		}
		if d > 0 {
			vu = vf.Add(d)
		}
	}
	if !vu.IsZero() && !vu.After(vf) {
		vu = vf.Add(time.Second)
	}
	in := &indicator{
		Type:           "indicator",
		SpecVersion:    "2.1",
		ID:             id,
		Created:        b.ts.format(created),
		Modified:       b.ts.format(maxTime(created, vf)),
		CreatedByRef:   o.createdBy,
		Name:           o.value,
		Description:    o.description,
		IndicatorTypes: malicious,
		Pattern:        pat,
		PatternType:    "stix",
		PatternVersion: "2.1",
		ValidFrom:      b.ts.format(vf),
		Labels:         union(b.opts.Labels, o.labels),
		batch:          b.serial,
	}
	if !vu.IsZero() {
		in.ValidUntil = b.ts.format(vu)
	}
	conf := o.confidence
	if conf < 0 {
		conf = b.opts.Confidence
	}
	if conf > 0 {
		c := min(conf, 100)
		in.Confidence = &c
	}
	ref := o.ref
	if ref.SourceName == "" {
		ref.SourceName = b.source
	}
	if ref.URL == "" && ref.ExternalID == "" {
		ref.URL = b.opts.SourceURL
	}
	in.ExternalRefs = []ExtRef{ref}
	marks := o.markings
	if marks == nil {
		marks = b.tlp
	}
	in.MarkingRefs = marks // shared: merges build new slices
	for _, m := range marks {
		if _, ok := b.im.other[m]; ok {
			continue
		}
		if t, ok := stix.TLPFromMarking(m); ok {
			b.im.addOther(m, stix.TLPMarkingObject(t))
		}
	}
	if b.opts.Warninglists != nil {
		if hits := b.opts.Warninglists.Match(o.kind, o.value); len(hits) > 0 {
			in.Warninglists = hits
			b.res.Stats.Warninglisted++
			for _, h := range hits {
				b.res.Stats.WarninglistHits[h]++
			}
		}
	}
	if b.opts.Geo != nil {
		if a, ok := ipOf(o.kind, o.value); ok {
			if cc, ok := b.opts.Geo.Lookup(a); ok {
				in.Country = cc
			}
		}
	}
	if old != nil {
		old.merge(in)
		old.batch = b.serial
		return id
	}
	b.im.ind[id] = in
	b.im.order = append(b.im.order, id)
	return id
}

// ipOf returns the address of an IP value, or the first address of a
// network.
func ipOf(k observable.Kind, v string) (netip.Addr, bool) {
	switch k {
	case observable.IPv4, observable.IPv6:
		a, err := netip.ParseAddr(v)
		return a, err == nil
	case observable.CIDR4, observable.CIDR6:
		p, err := netip.ParsePrefix(v)
		return p.Addr(), err == nil
	}
	return netip.Addr{}, false
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
