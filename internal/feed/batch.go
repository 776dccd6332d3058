package feed

import (
	"net/netip"
	"slices"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
)

// batch imports one input into an Importer.
type batch struct {
	im     *Importer
	name   string
	opts   Options
	now    time.Time
	nowTS  string
	source string
	tlp    []string // default marking refs
	res    Result
	seen   map[string]struct{}
}

func (im *Importer) newBatch(name string, opts Options) *batch {
	b := &batch{im: im, name: name, opts: opts, now: opts.Now, seen: map[string]struct{}{}}
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
	scoID, sco := SCO(o.kind, o.value)
	b.im.addOther(scoID, sco)
	b.res.Stats.Observables++
	if !o.indicator {
		return ""
	}
	id := IndicatorID(o.kind, o.value)
	if _, dup := b.seen[id]; dup {
		b.res.Stats.Duplicates++
	} else {
		b.seen[id] = struct{}{}
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
		Created:        stix.FormatTimestamp(created),
		Modified:       stix.FormatTimestamp(maxTime(created, vf)),
		CreatedByRef:   o.createdBy,
		Name:           o.value,
		Description:    o.description,
		IndicatorTypes: []string{"malicious-activity"},
		Pattern:        Pattern(o.kind, o.value),
		PatternType:    "stix",
		PatternVersion: "2.1",
		ValidFrom:      stix.FormatTimestamp(vf),
		Labels:         union(slices.Clone(b.opts.Labels), o.labels),
	}
	if !vu.IsZero() {
		in.ValidUntil = stix.FormatTimestamp(vu)
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
	in.MarkingRefs = slices.Clone(marks)
	for _, m := range marks {
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
	if old, ok := b.im.ind[id]; ok {
		old.merge(in)
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
