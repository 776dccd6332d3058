package store

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

func TestSearchDocOf(t *testing.T) {
	for _, tc := range []struct {
		raw                 string
		title, tlp, source  string
		names, body, inKeys []string
	}{
		{`{"type":"intrusion-set","name":"APT28","aliases":["Fancy Bear"],"description":"A group.","created_by_ref":"identity--x",
			"external_references":[{"source_name":"mitre-attack","external_id":"G0007"}]}`,
			"APT28", "", "identity--x", []string{"APT28", "Fancy Bear", "G0007"}, []string{"A group."}, []string{"|apt28|", "|fancy bear|", "|g0007|"}},
		{`{"type":"indicator","pattern":"[domain-name:value = 'evil.example.com' OR url:value = 'http://x/it\\'s']","labels":["c2"],
			"object_marking_refs":["` + stix.TLPGreen.MarkingID() + `","` + stix.TLPRed.MarkingID() + `"]}`,
			"[domain-name:value = 'evil.example.com' OR url:value = 'http://x/it\\'s']", "red", "", []string{"evil.example.com", "http://x/it's"}, []string{"c2"}, []string{"|evil.example.com|"}},
		{`{"type":"ipv4-addr","value":"198.51.100.7"}`, "198.51.100.7", "", "", []string{"198.51.100.7"}, nil, []string{"|198.51.100.7|"}},
		{`{"type":"file","hashes":{"SHA-256":"aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"}}`,
			"aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f", "", "", nil, nil, nil},
		{`{"type":"opinion","opinion":"agree","explanation":"seen","object_marking_refs":["` + stix.TLPClear.MarkingID() + `"]}`,
			"opinion: agree", "clear", "", nil, []string{"seen", "agree"}, nil},
		{`{"type":"relationship","relationship_type":"uses"}`, "uses", "", "", nil, []string{"uses"}, nil},
		{`{"type":"x-custom"}`, "x-custom", "", "", nil, nil, nil},
		{`not json`, "", "", "", nil, nil, nil},
	} {
		d := SearchDocOf([]byte(tc.raw))
		if d.Title != tc.title || d.TLP != tc.tlp || d.Source != tc.source {
			t.Errorf("%s: title %q tlp %q source %q", tc.raw, d.Title, d.TLP, d.Source)
		}
		for _, n := range tc.names {
			if !strings.Contains(d.Names, n) {
				t.Errorf("%s: names %q lack %q", tc.raw, d.Names, n)
			}
		}
		for _, b := range tc.body {
			if !strings.Contains(d.Body, b) {
				t.Errorf("%s: body %q lacks %q", tc.raw, d.Body, b)
			}
		}
		for _, k := range tc.inKeys {
			if !strings.Contains(d.Keys, k) {
				t.Errorf("%s: keys %q lack %q", tc.raw, d.Keys, k)
			}
		}
	}
}

func TestSearchWords(t *testing.T) {
	for in, want := range map[string][]string{
		"APT28":                 {"APT28"},
		"  fancy   bear ":       {"fancy", "bear"},
		"CVE-2021-44228":        {"CVE-2021-44228"},
		`"evil.example.com".`:   {"evil.example.com"},
		"T1566.001, (phishing)": {"T1566.001", "phishing"},
		"--- ... ":              nil,
		"ünïcödé wörd":          {"ünïcödé", "wörd"},
	} {
		if got := SearchWords(in); !slices.Equal(got, want) {
			t.Errorf("SearchWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSearchCursorRoundTrip(t *testing.T) {
	ranked, browse := SearchQuery{Text: "x"}, SearchQuery{}
	for _, c := range []SearchCursor{{Offset: 50}, {Modified: 1 << 60, Seq: 7}, {Modified: -5, Seq: 0}} {
		q := browse
		if c.Offset > 0 {
			q = ranked
		}
		got, err := DecodeSearchCursor(EncodeSearchCursor(c, q), q)
		if err != nil || got != c {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	if _, err := DecodeSearchCursor(EncodeSearchCursor(SearchCursor{Offset: 5}, ranked), browse); entente.ErrorCode(err) != entente.EINVALID {
		t.Errorf("a ranked cursor for a browse: %v", err)
	}
	if _, err := DecodeSearchCursor(EncodeSearchCursor(SearchCursor{Offset: MaxSearchOffset + 1}, ranked), ranked); entente.ErrorCode(err) != entente.EINVALID {
		t.Errorf("an offset past the bound: %v", err)
	}
}

// FuzzSearchDocOf checks that extraction never fails or panics, that the
// title is valid UTF-8 within its bound, and that the keys are framed.
func FuzzSearchDocOf(f *testing.F) {
	f.Add([]byte(`{"type":"intrusion-set","name":"APT28","aliases":["Fancy Bear"]}`))
	f.Add([]byte(`{"type":"indicator","pattern":"[ipv4-addr:value = '1.2.3.4']"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := SearchDocOf(raw)
		if json.Valid(raw) && !utf8.ValidString(d.Title) {
			t.Errorf("title %q is not UTF-8", d.Title)
		}
		if len(d.Title) > 304 {
			t.Errorf("title of %d bytes", len(d.Title))
		}
		if d.Keys != "" && (!strings.HasPrefix(d.Keys, "|") || !strings.HasSuffix(d.Keys, "|")) {
			t.Errorf("keys %q", d.Keys)
		}
	})
}

// FuzzSearchText checks that words and cursors never panic and that a
// cursor decodes only to what it encodes.
func FuzzSearchText(f *testing.F) {
	f.Add("APT28 fancy bear", "cjo1MA")
	f.Add("'\"-- ..", "YjoxOjI")
	f.Fuzz(func(t *testing.T, text, cursor string) {
		for _, w := range SearchWords(text) {
			if w == "" || strings.Trim(w, "-._:/@+") != w {
				t.Errorf("word %q of %q", w, text)
			}
		}
		for _, q := range []SearchQuery{{Text: "x"}, {}} {
			c, err := DecodeSearchCursor(cursor, q)
			if err != nil {
				continue
			}
			back, err := DecodeSearchCursor(EncodeSearchCursor(c, q), q)
			if err != nil || back != c {
				t.Errorf("cursor %q: %+v then %+v, %v", cursor, c, back, err)
			}
		}
		_ = stix.PatternValues(text)
	})
}
