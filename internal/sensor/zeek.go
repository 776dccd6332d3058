package sensor

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"time"
)

// ZeekTSV is Zeek's default tab-separated log format, for any log type:
// the columns that hold observables are found by name in the #fields
// header.
var ZeekTSV Format = zeekFormat{}

type zeekFormat struct{}

func (zeekFormat) Name() string      { return "zeek" }
func (zeekFormat) Stateful() bool    { return true }
func (zeekFormat) NewParser() Parser { return newZeekParser() }

type zeekColumn struct {
	index int
	kind  ObsKind
}

type zeekParser struct {
	sep      byte
	setSep   byte
	unset    []byte
	empty    []byte
	columns  []zeekColumn // sorted by index
	last     int          // highest column index needed
	nfields  int
	tsColumn int
	names    []string // the #fields names, for Record
	uri      bool     // a column holds a request target (joinURL)
}

func newZeekParser() *zeekParser {
	return &zeekParser{sep: '\t', setSep: ',', unset: []byte("-"), empty: []byte("(empty)"), tsColumn: -1}
}

// headerValue decodes a header value such as "\x09".
func headerValue(v []byte) []byte {
	if len(v) == 4 && v[0] == '\\' && v[1] == 'x' {
		if b, err := strconv.ParseUint(string(v[2:]), 16, 8); err == nil {
			return []byte{byte(b)}
		}
	}
	return v
}

func (p *zeekParser) header(line []byte) error {
	// "#separator \x09" uses a space; the others use the separator.
	if bytes.HasPrefix(line, []byte("#separator ")) {
		v := headerValue(line[len("#separator "):])
		if len(v) != 1 {
			return fmt.Errorf("unsupported #separator %q (want one byte)", line[len("#separator "):])
		}
		p.sep = v[0]
		return nil
	}
	name, value, _ := bytes.Cut(line[1:], []byte{p.sep})
	switch string(name) {
	case "set_separator":
		v := headerValue(value)
		if len(v) != 1 {
			return fmt.Errorf("unsupported #set_separator %q (want one byte)", value)
		}
		p.setSep = v[0]
	case "unset_field":
		p.unset = bytes.Clone(value)
	case "empty_field":
		p.empty = bytes.Clone(value)
	case "fields":
		p.columns = p.columns[:0]
		p.last = -1
		p.tsColumn = -1
		fields := bytes.Split(value, []byte{p.sep})
		p.nfields = len(fields)
		p.names = p.names[:0]
		p.uri = false
		for i, f := range fields {
			p.names = append(p.names, string(f))
			if k, ok := zeekFields[string(f)]; ok {
				p.columns = append(p.columns, zeekColumn{i, k})
				p.last = i
				p.uri = p.uri || k == obsURI
			}
			if string(f) == "ts" {
				p.tsColumn = i
			}
		}
	}
	return nil
}

func (p *zeekParser) Parse(line []byte, obs []Obs) ([]Obs, error) {
	if len(line) == 0 {
		return obs, nil
	}
	if line[0] == '#' {
		return obs, p.header(line)
	}
	if line[0] == '\t' || line[0] == ' ' {
		// Some real logs indent their first header line.
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '#' {
			return obs, p.header(t)
		}
	}
	if p.nfields == 0 {
		return obs, errors.New("data line before any #fields header")
	}
	from := len(obs)
	n := len(line)
	pat := 0x0101010101010101 * uint64(p.sep)
	setPat := 0x0101010101010101 * uint64(p.setSep)
	col, i := 0, 0 // column col starts at line[i]
	for ci, c := range p.columns {
		// The columns before c's are stepped over eight bytes at a time:
		// a call of bytes.IndexByte per column cost more than the search.
		for col < c.index {
			j := nextSep(line, i, pat)
			if j == n {
				return obs[:from], fmt.Errorf("line has %d fields, the #fields header names %d", col+1, p.nfields)
			}
			i = j + 1
			col++
		}
		j, set := fieldEnd(line, i, pat, setPat)
		f := line[i:j]
		k := c.kind
		if len(f) > 0 && !bytes.Equal(f, p.unset) && !bytes.Equal(f, p.empty) {
			if !set || k == obsURI || k == ObsHost {
				obs = append(obs, Obs{Kind: k, Value: f})
			} else {
				for len(f) > 0 {
					j := bytes.IndexByte(f, p.setSep)
					var v []byte
					if j < 0 {
						v, f = f, nil
					} else {
						v, f = f[:j], f[j+1:]
					}
					if len(v) > 0 {
						obs = append(obs, Obs{Kind: k, Value: v})
					}
				}
			}
		}
		if j == n && ci < len(p.columns)-1 {
			return obs[:from], fmt.Errorf("line has %d fields, the #fields header names %d", col+1, p.nfields)
		}
		i = j + 1
		col++
	}
	if !p.uri {
		return obs, nil // joinURL would change nothing
	}
	return joinURL(obs, from), nil
}

// fieldEnd returns the end of the field at b[i:] (the index of the first
// separator from i, or len(b); pat: the separator in every byte) and
// whether the field holds the set separator (setPat likewise), both found
// in one pass eight bytes at a time: a call of bytes.IndexByte for each
// cost more than the search.
func fieldEnd(b []byte, i int, pat, setPat uint64) (int, bool) {
	n := len(b)
	var set uint64
	for ; i+8 <= n; i += 8 {
		x := word8(b, i)
		s := firstZeros(x ^ setPat)
		if m := firstZeros(x ^ pat); m != 0 {
			// The set separators before the separator: the bits below
			// m's lowest (exact, as firstZeros says).
			return i + bits.TrailingZeros64(m)>>3, set|s&(m&-m-1) != 0
		}
		set |= s
	}
	sep, ss := byte(pat), byte(setPat)
	for ; i < n && b[i] != sep; i++ {
		if b[i] == ss {
			set = 1
		}
	}
	return i, set != 0
}

func (p *zeekParser) Time(line []byte) (time.Time, bool) {
	if p.tsColumn < 0 || len(line) == 0 || line[0] == '#' {
		return time.Time{}, false
	}
	fields := bytes.Split(line, []byte{p.sep})
	if p.tsColumn >= len(fields) {
		return time.Time{}, false
	}
	return parseTime(fields[p.tsColumn], nil)
}
