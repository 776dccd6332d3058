package sensor

import (
	"bytes"
	"fmt"
	"testing"
)

// parseRef is the Zeek TSV parser's data-line loop as it was before the
// columns were stepped over eight bytes at a time (a bytes.IndexByte per
// column, joinURL always): FuzzZeekParseAsBefore holds Parse to it.
func (p *zeekParser) parseRef(line []byte, obs []Obs) ([]Obs, error) {
	from := len(obs)
	col := 0
	ci := 0
	rest := line
	for ci < len(p.columns) {
		i := bytes.IndexByte(rest, p.sep)
		var f []byte
		if i < 0 {
			f, rest = rest, nil
		} else {
			f, rest = rest[:i], rest[i+1:]
		}
		if col == p.columns[ci].index {
			k := p.columns[ci].kind
			ci++
			if len(f) > 0 && !bytes.Equal(f, p.unset) && !bytes.Equal(f, p.empty) {
				if k == obsURI || k == ObsHost || bytes.IndexByte(f, p.setSep) < 0 {
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
		}
		if i < 0 {
			break
		}
		col++
	}
	if ci < len(p.columns) {
		return obs[:from], fmt.Errorf("line has %d fields, the #fields header names %d", col+1, p.nfields)
	}
	return joinURL(obs, from), nil
}

// checkZeekParseAsBefore parses line after the header (tab or space
// separated, as the fuzzer wrote it) with Parse and with parseRef and
// compares the observables and errors.
func checkZeekParseAsBefore(t *testing.T, header, line string) {
	p := newZeekParser()
	for _, h := range bytes.Split([]byte(header), []byte{'\n'}) {
		if len(h) > 0 && h[0] == '#' {
			if _, err := p.Parse(h, nil); err != nil {
				return
			}
		}
	}
	if p.nfields == 0 || len(line) == 0 || line[0] == '#' || line[0] == ' ' || line[0] == '\t' {
		return
	}
	prefix := []Obs{{Kind: ObsIP, Value: []byte("kept")}}
	got, gerr := p.Parse([]byte(line), append([]Obs(nil), prefix...))
	want, werr := p.parseRef([]byte(line), append([]Obs(nil), prefix...))
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("header %q line %q: error %v, before %v", header, line, gerr, werr)
	}
	if len(got) != len(want) {
		t.Fatalf("header %q line %q: %d observables, before %d", header, line, len(got), len(want))
	}
	for i := range got {
		if got[i].Kind != want[i].Kind || !bytes.Equal(got[i].Value, want[i].Value) || !bytes.Equal(got[i].Aux, want[i].Aux) {
			t.Fatalf("header %q line %q: observable %d %v %q %q, before %v %q %q", header, line, i,
				got[i].Kind, got[i].Value, got[i].Aux, want[i].Kind, want[i].Value, want[i].Aux)
		}
	}
}

var zeekParseSeeds = []struct{ header, line string }{
	{"#separator \\x09\n#set_separator\t,\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto",
		"1601998373.200639\tCklhEo4FWrkyjM44zd\t67.192.167.246\t5353\t150.32.112.127\t5353\tudp"},
	{"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h", "1\t2\t22fc:aa76:4968:57fe:b25b:530c:e0ee:2fd2\t3\t2eaa:16e1::fe7e"},
	{"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h", "1\t2\t1.2.3.4\t3"},
	{"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h", "1\t2\t1.2.3.4"},
	{"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h", "1\t2\t-\t3\t(empty)\t"},
	{"#fields\tts\thost\turi\tid.resp_h", "1\tevil.com:8080\t/a/b?c\t10.0.0.1"},
	{"#fields\tts\turi", "1\thttp://evil.com/x"},
	{"#fields\tts\ttx_hosts\trx_hosts", "1\t1.2.3.4,5.6.7.8,,9.9.9.9\t"},
	{"#separator ;\n#set_separator;|\n#unset_field;none\n#fields;a;answers;query", "x;a.com|1.2.3.4;none"},
	{"#fields\tuid", "anything\tat\tall"},
	{"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h", ""},
	{"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h", "\t\t\t\t\t\t\t"},
	{"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h", "12345678\t12345678\t12345678,12345678\t1\t123456781234567812345678"},
}

func TestZeekParseAsBefore(t *testing.T) {
	for _, s := range zeekParseSeeds {
		checkZeekParseAsBefore(t, s.header, s.line)
	}
}

func FuzzZeekParseAsBefore(f *testing.F) {
	for _, s := range zeekParseSeeds {
		f.Add(s.header, s.line)
	}
	f.Fuzz(checkZeekParseAsBefore)
}
