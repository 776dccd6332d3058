// Package feed imports threat-intelligence feeds and turns them into STIX
// 2.1 objects: MISP events (in the {"Event":...} and {"response":[...]}
// wrappers, or bare), MISP feeds (manifest.json plus one <uuid>.json event
// per entry), CSV feeds (the URLhaus, ThreatFox and Feodo Tracker layouts,
// or any other through a column mapping) and plain lists of IP addresses,
// networks, domains, URLs and hashes (also hosts files, RPZ zones and the
// dnsmasq, unbound, BIND and adblock-style lists that blocklists publish).
//
// Every observable value is normalised (package observable) and becomes
// one cyber-observable object and, when the source means it for detection,
// one indicator. Indicator identifiers are deterministic: a version 5 UUID
// in the namespace [IndicatorNamespace] of the indicator's pattern, and the
// pattern is built from the normalised value, so that the same observable
// arriving from many feeds is the same indicator. Its sources are kept as
// external references (source_name is the feed's name), and [Merge]
// unions two versions of one indicator. An [Importer] deduplicates across
// every file it is given; [Import] is the one-file convenience.
//
// Lifetime: valid_until is valid_from plus a duration per observable kind
// ([DefaultValidFor], overridable per source through [Options]);
// [Confidence] decays an indicator's confidence with age.
//
// Values that hit a MISP warninglist are flagged with the lists' names in
// the custom property x_entente_warninglists; the geolocated country of an
// IP indicator is kept in x_entente_country.
//
// Bad input is not fatal: each malformed row, unknown MISP attribute type
// or invalid value is recorded as a [Reject] naming the file and row, or
// the event and attribute, and the rest is imported.
package feed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/gunzip"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/warninglist"
)

// Format names an input format.
type Format string

// The input formats.
const (
	FormatAuto      Format = ""
	FormatMISPEvent Format = "misp-event"
	FormatMISPFeed  Format = "misp-feed"
	FormatCSV       Format = "csv"
	FormatPlain     Format = "plain"
)

// ParseFormat returns the format named s ("" or "auto" is FormatAuto).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatAuto, FormatMISPEvent, FormatMISPFeed, FormatCSV, FormatPlain:
		return f, nil
	case "auto":
		return FormatAuto, nil
	}
	return "", fmt.Errorf("unknown feed format %q (want misp-event, misp-feed, csv or plain)", s)
}

// Locator gives the country of an address (geo.Table and geo.MMDB are
// Locators).
type Locator interface {
	Lookup(addr netip.Addr) (cc string, ok bool)
}

// Options controls an import.
type Options struct {
	// Format forces the input format; FormatAuto detects it.
	Format Format
	// Source is the feed's name, recorded as the source_name of every
	// indicator's external reference; the file name when empty.
	Source string
	// SourceURL, when set, is the url of those external references.
	SourceURL string
	// CSV is the CSV layout: "urlhaus", "threatfox", "feodo", "custom"
	// (with Columns), or "" to detect it from the header.
	CSV string
	// Columns maps the columns of a custom CSV layout.
	Columns Columns
	// DefaultValidFor overrides DefaultValidFor per observable kind for
	// this source; a zero duration means no valid_until.
	DefaultValidFor map[observable.Kind]time.Duration
	// Confidence is the confidence (0-100) of indicators whose source
	// gives none; 0 leaves confidence out.
	Confidence int
	// TLP is the marking of indicators whose source names no TLP (MISP
	// tlp: tags override it); nil sets no marking.
	TLP *stix.TLP
	// Labels are added to every indicator.
	Labels []string
	// Warninglists, when set, flags indicators whose value hits a list.
	Warninglists *warninglist.Set
	// Geo, when set, records the country of IP indicators.
	Geo Locator
	// Now is the import time (created/modified of objects the source does
	// not date, and valid_from of plain-list entries); time.Now when zero.
	Now time.Time
	// MaxSize is the most a compressed input may inflate to
	// (DefaultMaxSize when 0); inputs that inflate far more than real
	// feeds do are refused too (see package gunzip).
	MaxSize int64
	// AllIndicators makes an indicator of every MISP attribute with an
	// observable value, not only those marked to_ids.
	AllIndicators bool
}

// DefaultValidFor is how long an indicator of each kind stays valid after
// valid_from when the source says nothing: addresses are reassigned
// quickly, names and URLs less so, and a file hash never stops denoting
// the same file (0: no valid_until).
var DefaultValidFor = map[observable.Kind]time.Duration{
	observable.IPv4:   30 * 24 * time.Hour,
	observable.IPv6:   30 * 24 * time.Hour,
	observable.CIDR4:  90 * 24 * time.Hour,
	observable.CIDR6:  90 * 24 * time.Hour,
	observable.Domain: 90 * 24 * time.Hour,
	observable.URL:    30 * 24 * time.Hour,
	URLPath:           30 * 24 * time.Hour,
	observable.Email:  180 * 24 * time.Hour,
}

// Reject is one piece of input that was not imported.
type Reject struct {
	// Where names the input: "file:row 17" or
	// "event <uuid> attribute <uuid>".
	Where string `json:"where"`
	// Reason says why.
	Reason string `json:"reason"`
}

// Stats counts what an import did.
type Stats struct {
	// Records is the number of input records read (rows, lines, MISP
	// attributes).
	Records int `json:"records"`
	// Indicators is the number of indicators produced (before dedup
	// against other files).
	Indicators int `json:"indicators"`
	// Observables is the number of cyber-observable values produced.
	Observables int `json:"observables"`
	// Duplicates counts values seen more than once in this input.
	Duplicates int `json:"duplicates"`
	// Rejected is len(Rejected).
	Rejected int `json:"rejected"`
	// Skipped counts known records that carry nothing to import (MISP
	// text or link attributes, galaxies of other kinds), by type.
	Skipped map[string]int `json:"skipped,omitempty"`
	// Warninglisted is the number of indicators that hit a warninglist,
	// and WarninglistHits how many hit each list.
	Warninglisted   int            `json:"warninglisted"`
	WarninglistHits map[string]int `json:"warninglist_hits,omitempty"`
	// Events is the number of MISP events read.
	Events int `json:"events,omitempty"`
}

// Result is what importing one input gives.
type Result struct {
	// Format is the format the input was read as.
	Format Format
	// Objects are the STIX 2.1 objects: indicators, cyber-observable
	// objects, TLP marking definitions, identities, malware,
	// intrusion-sets, attack-patterns and relationships, each once.
	Objects []json.RawMessage
	// Rejected lists what was not imported, and why.
	Rejected []Reject
	Stats    Stats
}

// DefaultMaxSize is the default Options.MaxSize: an import holds what it
// reads in memory.
const DefaultMaxSize = 2 << 30

// maxRejects bounds the rejects kept per input (all are counted).
const maxRejects = 10000

// Import reads one input and returns its STIX objects.
func Import(r io.Reader, name string, opts Options) (Result, error) {
	im := NewImporter()
	sum, err := im.Import(r, name, opts)
	if err != nil {
		return Result{}, err
	}
	sum.Objects = im.Objects()
	return sum, nil
}

// Detect guesses the format of an input from its first bytes.
func Detect(head []byte) Format {
	h := bytes.TrimLeft(head, " \t\r\n\ufeff")
	if len(h) > 0 && (h[0] == '{' || h[0] == '[') {
		return FormatMISPEvent
	}
	lines := 0
	for line := range bytes.Lines(h) {
		l := bytes.TrimSpace(line)
		if len(l) == 0 {
			continue
		}
		if l[0] == '#' {
			if detectCSVLayout(string(l)) != "" {
				return FormatCSV
			}
			continue
		}
		lines++
		if lines > 5 {
			break
		}
		if l[0] == '"' && bytes.Count(l, []byte(",")) >= 2 {
			return FormatCSV
		}
	}
	return FormatPlain
}

// Importer imports many inputs into one deduplicated set of objects. It
// is not safe for concurrent use.
type Importer struct {
	ind    map[string]*indicator
	other  map[string]json.RawMessage
	order  []string
	events map[string]bool
	serial uint64
	// settled is how much of order TakeSettled has gone through, taken
	// how much TakeObjects has (its ids there are "").
	settled, taken int
	// parsed caches the timestamps TakeChecked parses.
	parsed parsedTimes
	// settleEvery and onSettle: see SettleEvery; settleCalled is
	// len(order) when onSettle was last called.
	settleEvery, settleCalled int
	onSettle                  func()
}

// SettleEvery has im call f, while it reads a list or CSV input, between
// two of its records, whenever n objects or more were added since the
// last TakeSettled (or since f was last called): f may take the settled
// objects (TakeSettled, TakeSettledChecked) then, as between two inputs,
// so that a large input is handed on as it is read, not only once read
// whole. f must not import into im.
func (im *Importer) SettleEvery(n int, f func()) {
	im.settleEvery, im.onSettle = n, f
}

// maybeSettle calls the SettleEvery function when its time has come.
func (im *Importer) maybeSettle() {
	if im.onSettle != nil && len(im.order)-max(im.settled, im.settleCalled) >= im.settleEvery {
		// Not again before n more, whether or not f took anything.
		im.settleCalled = len(im.order)
		im.onSettle()
	}
}

// NewImporter returns an empty Importer.
func NewImporter() *Importer {
	return &Importer{ind: map[string]*indicator{}, other: map[string]json.RawMessage{}, events: map[string]bool{}}
}

// Len returns the number of distinct objects imported so far.
func (im *Importer) Len() int { return len(im.order) }

// Import reads one input with opts and adds its objects to im. The
// Result it returns carries the input's rejects and statistics but no
// Objects (see [Importer.Objects]). Only input that cannot be read at all
// (an I/O error, a MISP file that is not JSON) is an error.
func (im *Importer) Import(r io.Reader, name string, opts Options) (Result, error) {
	maxSize := opts.MaxSize
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	zr, err := gunzip.Open(r, name, gunzip.Limits{MaxSize: maxSize})
	if err != nil {
		return Result{}, fmt.Errorf("import: %w", err)
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 1<<16)
	f := opts.Format
	if f == FormatAuto {
		head, _ := br.Peek(4096)
		f = Detect(head)
	}
	b := im.newBatch(name, opts)
	b.res.Format = f
	switch f {
	case FormatMISPEvent:
		var data []byte
		data, err = io.ReadAll(br)
		if err == nil {
			err = b.mispData(data)
		}
	case FormatCSV:
		err = b.csv(br)
	case FormatPlain:
		err = b.plain(br)
	case FormatMISPFeed:
		err = errors.New("a MISP feed is a directory: use ImportMISPFeed")
	default:
		err = fmt.Errorf("unknown format %q", f)
	}
	if err != nil {
		if gunzip.Named(err) {
			return Result{}, fmt.Errorf("import: %w", err)
		}
		return Result{}, fmt.Errorf("import %s: %w", name, err)
	}
	b.finish()
	return b.res, nil
}

// Objects returns every object imported so far (but those taken by
// [Importer.TakeSettled]), indicators with all their sources merged, in
// the order first seen.
func (im *Importer) Objects() []json.RawMessage {
	out := make([]json.RawMessage, 0, len(im.order)-im.taken)
	for _, id := range im.order[im.taken:] {
		if in, ok := im.ind[id]; ok {
			out = append(out, in.marshal())
			continue
		}
		if raw := im.other[id]; raw != nil { // nil: taken by TakeSettled
			out = append(out, raw)
		}
	}
	return out
}

// TakeObjects returns, at most n at a time, the objects [Importer.Objects]
// would return, in its order, and forgets them, so that what an import of
// many inputs holds at its end (the indicators, with every source merged)
// can be handed on in batches, each rendered as it goes, rather than all
// rendered at once beside all of them still held. It returns nil once
// every object was taken. Call it only after the last input: an input
// imported after it may produce again an indicator it took.
func (im *Importer) TakeObjects(n int) []json.RawMessage {
	var out []json.RawMessage
	im.take(n, func(raw json.RawMessage, _ *indicator) {
		if out == nil {
			out = make([]json.RawMessage, 0, min(n, len(im.order)-im.taken+1))
		}
		out = append(out, raw)
	})
	return out
}

// TakeChecked is [Importer.TakeObjects] with, for each indicator, the
// envelope stix.Decode would read from its JSON when stix.Validate is
// sure to accept it (see [Object]): an import can store those without
// decoding and validating them again.
func (im *Importer) TakeChecked(n int) []Object {
	var out []Object
	var envs []stix.Object // one allocation, not one an object
	im.take(n, func(raw json.RawMessage, in *indicator) {
		if out == nil {
			c := min(n, len(im.order)-im.taken+1)
			out, envs = make([]Object, 0, c), make([]stix.Object, 0, c)
		}
		o := Object{Raw: raw}
		var env stix.Object
		var ok bool
		if in != nil {
			env, ok = in.checked(raw, &im.parsed)
		} else {
			env, ok = checkedSCO(raw)
		}
		if ok {
			if len(envs) == cap(envs) {
				// Not with the capacity above; the pointers into the
				// full slice keep it.
				envs = make([]stix.Object, 0, 1024)
			}
			envs = append(envs, env)
			o.Checked = &envs[len(envs)-1]
		}
		out = append(out, o)
	})
	return out
}

// take hands at most n objects to add, in order, with the indicator each
// was rendered from (nil for other objects), and forgets them.
func (im *Importer) take(n int, add func(raw json.RawMessage, in *indicator)) {
	for k := 0; im.taken < len(im.order) && k < n; {
		id := im.order[im.taken]
		im.order[im.taken] = ""
		im.taken++
		if id == "" { // taken by TakeSettled
			continue
		}
		if in, ok := im.ind[id]; ok {
			add(in.marshal(), in)
			delete(im.ind, id)
			k++
			continue
		}
		if raw := im.other[id]; raw != nil { // nil: taken by TakeSettled
			add(raw, nil)
			im.other[id] = nil
			k++
		}
	}
	im.settled = max(im.settled, im.taken)
}

// TakeSettled returns the objects imported since the previous call that
// no later input can change, in the order first seen, and forgets their
// content: every object but the indicators, whose sources later inputs
// may extend. Their ids stay known, so a later input that produces one of
// them again produces nothing, and [Importer.Objects] and
// [Importer.Each] leave them out. An importer can so hand most of its
// objects on (to be stored) while it still reads inputs, and the
// indicators, merged, once the last input is read.
func (im *Importer) TakeSettled() []json.RawMessage {
	var out []json.RawMessage
	start := max(im.settled, im.taken)
	for i, id := range im.order[start:] {
		if raw := im.other[id]; raw != nil {
			out = append(out, raw)
			im.other[id] = nil
			// Its place in the order is left empty: the walks that
			// follow (TakeObjects, at the end, through every object)
			// skip it without looking it up.
			im.order[start+i] = ""
		}
	}
	im.settled = len(im.order)
	return out
}

// Each calls fn with every object imported so far, as [Importer.Objects]
// orders them, and stops at fn's first error.
func (im *Importer) Each(fn func(raw json.RawMessage) error) error {
	for _, id := range im.order[im.taken:] {
		var raw json.RawMessage
		if in, ok := im.ind[id]; ok {
			raw = in.marshal()
		} else {
			raw = im.other[id]
		}
		if raw == nil { // taken by TakeSettled
			continue
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
	return nil
}

func (im *Importer) addOther(id string, raw json.RawMessage) bool {
	if _, ok := im.other[id]; ok {
		return false
	}
	im.other[id] = raw
	im.order = append(im.order, id)
	return true
}

// sortedKeys returns m's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
