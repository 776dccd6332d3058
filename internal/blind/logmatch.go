package blind

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
)

// Observed appends to dst the inputs to look up for one value a log
// reader extracted, under the same semantics as internal/match: an
// address with its prefixes, a name with its parents, a URL made of a
// host and a request target, an e-mail address, a hash. Values that are
// none of these append nothing.
func (p Params) Observed(o sensor.Obs, dst []string) []string {
	switch o.Kind {
	case sensor.ObsIP:
		if a, ok := parseAddr(o.Value); ok {
			return p.Queries(observable.IPv4, a.String(), dst)
		}
	case sensor.ObsDomain:
		return p.domain(o.Value, dst)
	case sensor.ObsAny, sensor.ObsHost:
		v := o.Value
		if o.Kind == sensor.ObsHost {
			v = hostOnly(v)
		}
		if a, ok := parseAddr(v); ok {
			return p.Queries(observable.IPv4, a.String(), dst)
		}
		return p.domain(v, dst)
	case sensor.ObsURL:
		target := string(o.Aux)
		var u string
		switch {
		case bytes.Contains(o.Aux, []byte("://")):
			u = target
		case len(target) > 0 && target[0] == '/' && len(o.Value) > 0:
			u = "http://" + string(o.Value) + target
		default:
			return dst
		}
		if n, err := observable.Normalize(observable.URL, u); err == nil {
			return append(dst, Input(observable.URL, n))
		}
	case sensor.ObsEmail:
		b := o.Value
		if i := bytes.LastIndexByte(b, '<'); i >= 0 {
			if j := bytes.IndexByte(b[i:], '>'); j > 0 {
				b = b[i+1 : i+j]
			}
		}
		if n, err := observable.Normalize(observable.Email, string(bytes.TrimSpace(b))); err == nil {
			return append(dst, Input(observable.Email, n))
		}
	case sensor.ObsHash:
		h := string(bytes.ReplaceAll(o.Value, []byte(":"), nil))
		var k observable.Kind
		switch len(h) {
		case 32:
			k = observable.MD5
		case 40:
			k = observable.SHA1
		case 64:
			k = observable.SHA256
		case 128:
			k = observable.SHA512
		default:
			return dst
		}
		if n, err := observable.Normalize(k, h); err == nil {
			return append(dst, Input(k, n))
		}
	}
	return dst
}

func (p Params) domain(b []byte, dst []string) []string {
	if len(b) == 0 || len(b) > 254 {
		return dst
	}
	n, err := observable.Normalize(observable.Domain, string(b))
	if err != nil {
		return dst
	}
	return p.Queries(observable.Domain, n, dst)
}

// parseAddr parses an address (a zone is dropped, IPv4-mapped addresses
// are unmapped), as the matcher does.
func parseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// hostOnly strips a port (and IPv6 brackets) from an HTTP host.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h
}

// collector gathers the distinct inputs of the lines one worker parses.
// IPv4 addresses, most of a network log's values, are parsed from the
// raw bytes and appended as numbers, a small cache leaving out those
// just seen; they are sorted and deduplicated at the end, their prefixes
// derived from them then, and only then are strings made. Other values
// are deduplicated on their raw bytes before they are normalised.
type collector struct {
	p      Params
	raw    map[string]struct{} // kind byte + value + aux, to normalise each once
	inputs map[string]struct{}
	v4     []uint32
	recent [1 << 14]uint64 // address | 1<<32, by hash: seen lately
	buf    []string
	key    []byte
}

func newCollector(p Params) *collector {
	return &collector{p: p, raw: map[string]struct{}{}, inputs: map[string]struct{}{}}
}

func (c *collector) Line(_ *sensor.Chunk, _ int64, _ []byte, obs []sensor.Obs, _ sensor.Parser) {
	for _, o := range obs {
		switch o.Kind {
		case sensor.ObsIP, sensor.ObsAny:
			if a, ok := sensor.ParseIPv4(o.Value); ok {
				c.addV4(a)
				continue
			}
		case sensor.ObsHost:
			if a, ok := sensor.ParseIPv4(hostOnly(o.Value)); ok {
				c.addV4(a)
				continue
			}
		}
		c.key = append(append(append(append(c.key[:0], byte(o.Kind)), o.Value...), 0), o.Aux...)
		if _, ok := c.raw[string(c.key)]; ok {
			continue
		}
		c.raw[string(c.key)] = struct{}{}
		c.buf = c.p.Observed(o, c.buf[:0])
		for _, in := range c.buf {
			c.inputs[in] = struct{}{}
		}
	}
}

// addV4 records an IPv4 address, unless it was just seen.
func (c *collector) addV4(a uint32) {
	h := (a * 0x9e3779b1) >> (32 - 14)
	if c.recent[h] == uint64(a)|1<<32 {
		return
	}
	c.recent[h] = uint64(a) | 1<<32
	c.v4 = append(c.v4, a)
}

func (c *collector) ChunkDone(*sensor.Chunk) {}

func addr4(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

// Collect reads the logs and returns the distinct inputs their values
// need looked up, in no particular order, with the reader's statistics.
func Collect(ctx context.Context, p Params, logs []sensor.Input, opts sensor.Options) ([]string, sensor.Stats, error) {
	var mu sync.Mutex
	var cs []*collector
	stats, err := sensor.Scan(ctx, logs, opts, func(int) sensor.Handler {
		c := newCollector(p)
		mu.Lock()
		cs = append(cs, c)
		mu.Unlock()
		return c
	})
	all := map[string]struct{}{}
	var v4 []uint32
	for _, c := range cs {
		for in := range c.inputs {
			all[in] = struct{}{}
		}
		v4 = append(v4, c.v4...)
	}
	slices.Sort(v4)
	v4 = slices.Compact(v4)
	out := make([]string, 0, len(all)+len(v4)*(1+len(p.V4Lengths)))
	for in := range all {
		out = append(out, in)
	}
	// The addresses, then their prefixes at each length: masking the
	// sorted addresses gives the prefixes sorted, duplicates together.
	var b []byte
	add := func() {
		if _, dup := all[string(b)]; !dup { // found by the generic path too
			out = append(out, string(b))
		}
	}
	for _, a := range v4 {
		b = addr4(a).AppendTo(append(b[:0], tagIPv4+"\x00"...))
		add()
	}
	for _, l := range p.V4Lengths {
		mask := ^uint32(1<<(32-l) - 1)
		for i, a := range v4 {
			if i > 0 && v4[i-1]&mask == a&mask {
				continue
			}
			b = netip.PrefixFrom(addr4(a&mask), l).AppendTo(append(b[:0], tagNet4+"\x00"...))
			add()
		}
	}
	return out, stats, err
}

// Snapshot returns a match snapshot of the translated inputs that are in
// the set: the partner's own values that hit (an address, the covering
// prefix of a network, a domain, ...), each with its blinded reference as
// indicator id. Matching logs against it is plain matching; it holds
// nothing the partner did not learn from its evaluations.
func (t *Translator) Snapshot() (*match.Snapshot, error) {
	ins, refs := t.Hits()
	b := match.NewBuilder()
	for i, in := range ins {
		k, v, err := ParseInput(in)
		if err != nil {
			return nil, err
		}
		r, err := b.Indicator(refs[i].String())
		if err != nil {
			return nil, err
		}
		if err := b.Add(k, v, r); err != nil {
			return nil, fmt.Errorf("blind: hit %q: %w", v, err)
		}
	}
	return b.Snapshot(), nil
}

// MatchOptions configure [Match].
type MatchOptions struct {
	// Logs and Scan are as for match.Run.
	Logs []sensor.Input
	Scan sensor.Options
	// Hits, when not nil, receives one JSON line per hit (see
	// match.HitRecord); the indicator of a hit is its blinded reference.
	Hits io.Writer
	// Now is as for match.Run.
	Now func() time.Time
}

// MatchResult is what [Match] found.
type MatchResult struct {
	*match.Result
	// Inputs is the number of distinct inputs the logs needed.
	Inputs int
	// Translate counts the translation.
	Translate TranslateStats
	// Info is the epoch matched against.
	Info *EpochInfo
	// Observed are, by blinded reference (the hits' indicator), the
	// distinct log values that hit it, at most MaxObserved each.
	Observed map[string][]string
}

// MaxObserved is the most observed values [MatchResult.Observed] keeps
// per reference.
const MaxObserved = 64

// Match matches logs against a peer's blinded set: it reads the logs once
// to collect the distinct inputs, translates those not yet translated in
// this epoch, then matches the lines with internal/match against the
// hits. When the budget runs out before every input is translated it
// matches what was translated and returns the refusal with the result:
// the lines whose values were not translated could not be decided.
func Match(ctx context.Context, t *Translator, opts MatchOptions) (*MatchResult, error) {
	info, err := t.Start(ctx)
	if err != nil {
		return nil, err
	}
	inputs, _, err := Collect(ctx, info.Params, opts.Logs, opts.Scan)
	if err != nil {
		return nil, err
	}
	res := &MatchResult{Inputs: len(inputs), Info: info}
	st, terr := t.Translate(ctx, inputs)
	res.Translate = st
	if terr != nil {
		if e, ok := terr.(*Error); !ok || e.Reason != ReasonBudget {
			return res, terr
		}
	}
	snap, err := t.Snapshot()
	if err != nil {
		return res, err
	}
	obs := &observer{w: opts.Hits, seen: map[string][]string{}}
	r, err := match.Run(ctx, match.Options{Snapshot: snap, Logs: opts.Logs, Scan: opts.Scan, Hits: obs, Now: opts.Now})
	res.Result, res.Observed = r, obs.seen
	if err != nil {
		return res, err
	}
	return res, terr
}

// observer passes hit lines on to w (when not nil) and keeps the values
// that hit each reference. match.Run writes whole lines.
type observer struct {
	w    io.Writer
	part []byte
	seen map[string][]string
}

func (o *observer) Write(b []byte) (int, error) {
	if o.w != nil {
		if _, err := o.w.Write(b); err != nil {
			return 0, err
		}
	}
	o.part = append(o.part, b...)
	for {
		i := bytes.IndexByte(o.part, '\n')
		if i < 0 {
			break
		}
		var h match.HitRecord
		if json.Unmarshal(o.part[:i], &h) == nil {
			if l := o.seen[h.Indicator]; len(l) < MaxObserved && !slices.Contains(l, h.Observed) {
				o.seen[h.Indicator] = append(l, h.Observed)
			}
		}
		o.part = o.part[i+1:]
	}
	return len(b), nil
}
