package sensor

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Recorder is implemented by the parsers that can decode a whole line
// into a record, for the pattern evaluator, which needs more of a record
// than its observables (ports, protocols, sizes). It is slower than
// Parse and is called only for the lines that may match a pattern.
type Recorder interface {
	// Record returns the line's fields. For Zeek TSV the keys are the
	// #fields names and the values strings, set fields unsplit; unset and
	// empty fields are left out. For JSON formats it is the decoded
	// object, numbers as json.Number.
	Record(line []byte) (map[string]any, error)
	// SetSeparator is the separator of the values of a Zeek set field
	// (0 for JSON formats, whose sets are arrays).
	SetSeparator() byte
}

// Record decodes a Zeek TSV data line by the #fields header in effect.
func (p *zeekParser) Record(line []byte) (map[string]any, error) {
	if len(line) == 0 || line[0] == '#' {
		return nil, fmt.Errorf("not a data line")
	}
	if len(p.names) == 0 {
		return nil, fmt.Errorf("data line before any #fields header")
	}
	rec := make(map[string]any, len(p.names))
	for i := 0; len(line) > 0 || i == 0; i++ {
		var f []byte
		if j := bytes.IndexByte(line, p.sep); j >= 0 {
			f, line = line[:j], line[j+1:]
		} else {
			f, line = line, nil
		}
		if i >= len(p.names) {
			break // fields past the header are ignored, as Parse ignores them
		}
		if len(f) > 0 && !bytes.Equal(f, p.unset) && !bytes.Equal(f, p.empty) {
			rec[p.names[i]] = string(f)
		}
	}
	return rec, nil
}

// SetSeparator returns the #set_separator in effect.
func (p *zeekParser) SetSeparator() byte { return p.setSep }

// Record decodes a JSON line.
func (p *jsonParser) Record(line []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if rec == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return rec, nil
}

// SetSeparator returns 0: JSON sets are arrays.
func (p *jsonParser) SetSeparator() byte { return 0 }
