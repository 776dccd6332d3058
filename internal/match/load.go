package match

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/entente-cti/entente/internal/gunzip"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// LoadStats counts what loading indicators did.
type LoadStats struct {
	Indicators int // STIX indicators compiled into the snapshot
	Values     int // values added (plain-list lines or pattern values)
	Revoked    int // indicators left out because revoked
	Expired    int // indicators left out because past valid_until
	// Uncompiled counts indicators whose pattern is not a comparison or an
	// OR of comparisons on supported observables: they belong to the
	// pattern evaluator, not the snapshot.
	Uncompiled int
	// Evaluated counts those of them added to the builder's pattern set
	// (see [Builder.CollectPatterns]); the others (patterns in another
	// language than STIX, or no set to collect them) are not matched.
	Evaluated int
	// Protected counts values the builder's guard (the safety net) left
	// out or cut, and patterns it left out because they name a
	// protected value (see [Builder.Guard]).
	Protected int
	Invalid   int      // objects, patterns or list lines that were not valid
	Problems  []string // the first problems, naming file and line or object
}

const maxProblems = 50

func (st *LoadStats) problem(format string, args ...any) {
	st.Invalid++
	if len(st.Problems) < maxProblems {
		st.Problems = append(st.Problems, fmt.Sprintf(format, args...))
	}
}

// Add adds the counts of o to st.
func (st *LoadStats) Add(o LoadStats) {
	st.Indicators += o.Indicators
	st.Values += o.Values
	st.Revoked += o.Revoked
	st.Expired += o.Expired
	st.Uncompiled += o.Uncompiled
	st.Evaluated += o.Evaluated
	st.Protected += o.Protected
	st.Invalid += o.Invalid
	for _, p := range o.Problems {
		if len(st.Problems) < maxProblems {
			st.Problems = append(st.Problems, p)
		}
	}
}

// DefaultMaxLoad is the most a compressed indicator file may inflate to
// in [LoadFile].
const DefaultMaxLoad = 2 << 30

// LoadFile adds the indicators of r, named name in messages, to b. r,
// gzip-compressed or not, is a STIX bundle (or array of objects) when it
// starts with '{' or '[', and a plain list of values (one per line; see
// [observable.Detect]) otherwise. Invalid entries are counted and
// described in the stats; the error is for input that cannot be read at
// all: a binary file, a truncated or corrupt gzip stream, one that would
// inflate past DefaultMaxLoad or like a gzip bomb.
func LoadFile(b *Builder, name string, r io.Reader, now time.Time) (LoadStats, error) {
	return LoadFileMax(b, name, r, now, DefaultMaxLoad)
}

// LoadFileMax is [LoadFile] with the most the input may inflate to.
func LoadFileMax(b *Builder, name string, r io.Reader, now time.Time, maxSize int64) (LoadStats, error) {
	zr, err := gunzip.Open(r, name, gunzip.Limits{MaxSize: maxSize})
	if err != nil {
		return LoadStats{}, err
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 1<<16)
	if head, _ := br.Peek(512); notText(head) {
		return LoadStats{}, fmt.Errorf("%s: a binary file, neither a STIX bundle nor a list of values", name)
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return LoadStats{}, nil
		}
		if err != nil {
			return LoadStats{}, fmt.Errorf("read %s: %w", name, err)
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xEF || c == 0xBB || c == 0xBF {
			continue
		}
		_ = br.UnreadByte()
		if c == '{' || c == '[' {
			return loadBundle(b, name, br, now)
		}
		return loadList(b, name, br)
	}
}

// notText reports whether head, the start of a file, holds bytes no text
// file does: NUL or other control characters but tab, CR, LF and FF.
func notText(head []byte) bool {
	for _, c := range head {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' {
			return true
		}
	}
	return false
}

func loadBundle(b *Builder, name string, r io.Reader, now time.Time) (LoadStats, error) {
	var st LoadStats
	err := stix.ReadBundle(r, func(index int, raw json.RawMessage) error {
		AddObject(b, raw, now, &st, fmt.Sprintf("%s: object %d", name, index))
		return nil
	})
	if gunzip.Named(err) {
		return st, err
	}
	if err != nil {
		return st, fmt.Errorf("%s: %w", name, err)
	}
	return st, nil
}

// AddObject compiles one STIX object into b when it is a current indicator
// with a compilable pattern, counting what it did in st; where names the
// object in problems. Objects of other types are ignored.
func AddObject(b *Builder, raw json.RawMessage, now time.Time, st *LoadStats, where string) {
	o, err := stix.Decode(raw)
	if err != nil {
		st.problem("%s: %v", where, err)
		return
	}
	if o.Type != "indicator" {
		return
	}
	if o.Revoked {
		st.Revoked++
		return
	}
	if !o.ValidUntil.IsZero() && !o.ValidUntil.After(now) {
		st.Expired++
		return
	}
	var ind struct {
		Pattern     string `json:"pattern"`
		PatternType string `json:"pattern_type"`
	}
	if err := json.Unmarshal(raw, &ind); err != nil {
		st.problem("%s (%s): %v", where, o.ID, err)
		return
	}
	if ind.PatternType != "" && ind.PatternType != "stix" {
		st.Uncompiled++
		return
	}
	vals, parsed, err := compilePattern(ind.Pattern)
	if err != nil {
		st.problem("%s (%s): pattern: %v", where, o.ID, err)
		return
	}
	if vals == nil {
		st.Uncompiled++
		if b.patterns != nil {
			if b.guard != nil && !b.guard.AdmitPattern(parsed) {
				st.Protected++
				return
			}
			if err := b.patterns.Add(o.ID, parsed); err != nil {
				st.problem("%s (%s): %v", where, o.ID, err)
				return
			}
			st.Evaluated++
		}
		return
	}
	ref, err := b.Indicator(o.ID)
	if err != nil {
		st.problem("%s (%s): %v", where, o.ID, err)
		return
	}
	for _, v := range vals {
		n, err := b.guarded(v.kind, v.value, ref)
		if err != nil {
			st.problem("%s (%s): %v", where, o.ID, err)
			continue
		}
		if n < 0 {
			st.Protected++
			continue
		}
		st.Values++
	}
	st.Indicators++
}

type kindValue struct {
	kind  observable.Kind
	value string
}

// Value is one value an indicator's pattern looks for, in the canonical
// form of its kind.
type Value struct {
	Kind  observable.Kind
	Value string
}

// PatternValues returns the values of a STIX pattern that the snapshot
// holds: one comparison, or an OR of comparisons, on supported
// observables (see [AddObject]). It returns nil and no error for a valid
// pattern that is anything else (the evaluator's), and an error for a
// pattern that does not parse or holds a value that is not valid for its
// kind.
func PatternValues(src string) ([]Value, error) {
	vals, _, err := compilePattern(src)
	if err != nil || vals == nil {
		return nil, err
	}
	out := make([]Value, len(vals))
	for i, v := range vals {
		out[i] = Value{v.kind, v.value}
	}
	return out, nil
}

// errNotCompilable marks a valid pattern that the snapshot cannot hold.
var errNotCompilable = errors.New("not compilable")

// compilePattern returns the values of a pattern that is one comparison
// or an OR of comparisons on supported observables, nil (and no error)
// for a valid pattern that is anything else, and an error for a pattern
// that does not parse or holds a value that is not valid for its kind.
func compilePattern(src string) ([]kindValue, *pattern.Pattern, error) {
	p, err := pattern.Parse(src)
	if err != nil {
		return nil, nil, err
	}
	vals, err := compileParsed(p)
	return vals, p, err
}

func compileParsed(p *pattern.Pattern) ([]kindValue, error) {
	cmps, ok := p.Disjunction()
	if !ok {
		return nil, nil
	}
	var out []kindValue
	for _, c := range cmps {
		k, ok := observable.FromComparison(c.ObjectType, c.Path)
		if !ok {
			return nil, nil
		}
		switch c.Op {
		case "=", "IN":
		case "ISSUBSET":
			if k != observable.IPv4 && k != observable.IPv6 {
				return nil, nil
			}
		default:
			return nil, nil
		}
		for _, v := range c.Values {
			nk, n, err := observable.NormalizeKind(k, v)
			if err != nil {
				return nil, err
			}
			out = append(out, kindValue{nk, n})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// loadList reads a plain list: one value per line; blank lines and lines
// starting with '#', '!' or ';' are comments. Hosts-file lines
// ("0.0.0.0 evil.com") give their name; otherwise the first field is the
// value. Reading and normalising run on their own goroutine, adding to
// the builder on the caller's, so that loading uses two cores.
func loadList(b *Builder, name string, r io.Reader) (LoadStats, error) {
	type item struct {
		line int
		kind observable.Kind
		val  string
		err  error
	}
	batches := make(chan []item, 16)
	var readErr error
	lines := 0
	go func() {
		defer close(batches)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		batch := make([]item, 0, 4096)
		for sc.Scan() {
			lines++
			l := bytes.TrimSpace(sc.Bytes())
			if len(l) == 0 || l[0] == '#' || l[0] == '!' || l[0] == ';' {
				continue
			}
			v := l
			if i := bytes.IndexAny(l, " \t"); i >= 0 {
				v = l[:i]
				if string(v) == "0.0.0.0" || string(v) == "127.0.0.1" || string(v) == "::" || string(v) == "::1" {
					rest := bytes.TrimLeft(l[i:], " \t")
					if j := bytes.IndexAny(rest, " \t"); j >= 0 {
						rest = rest[:j]
					}
					v = rest
				}
			}
			k, n, err := observable.Detect(string(v))
			batch = append(batch, item{lines, k, n, err})
			if len(batch) == cap(batch) {
				batches <- batch
				batch = make([]item, 0, 4096)
			}
		}
		if len(batch) > 0 {
			batches <- batch
		}
		readErr = sc.Err()
	}()
	var st LoadStats
	for batch := range batches {
		for _, it := range batch {
			if it.err != nil {
				st.problem("%s:%d: %v", name, it.line, it.err)
				continue
			}
			n, err := b.guarded(it.kind, it.val, DerivedRef)
			if err != nil {
				st.problem("%s:%d: %v", name, it.line, err)
				continue
			}
			if n < 0 {
				st.Protected++
				continue
			}
			st.Values++
		}
	}
	if readErr != nil {
		if gunzip.Named(readErr) {
			return st, fmt.Errorf("%w (after line %d)", readErr, lines)
		}
		return st, fmt.Errorf("read %s (after line %d): %w", name, lines, readErr)
	}
	return st, nil
}
