package taxonomy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuiltin loads the embedded taxonomies, which must each be listed
// in data/SOURCES.md with their origin.
func TestBuiltin(t *testing.T) {
	s, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	sources, err := os.ReadFile(filepath.Join("data", "SOURCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("data", "*.json"))
	if len(files) != len(s.Taxonomies()) || len(files) < 5 {
		t.Errorf("%d files, %d taxonomies", len(files), len(s.Taxonomies()))
	}
	for _, f := range files {
		if !strings.Contains(string(sources), "| "+filepath.Base(f)+" |") {
			t.Errorf("%s is not listed in data/SOURCES.md", f)
		}
	}
	for _, ns := range []string{"tlp", "PAP", "admiralty-scale", "estimative-language", "circl", "false-positive"} {
		if _, ok := s.byNS[strings.ToLower(ns)]; !ok {
			t.Errorf("taxonomy %s is not embedded", ns)
		}
	}
}

// TestCheck checks labels against the embedded taxonomies.
func TestCheck(t *testing.T) {
	s, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		label string
		want  string // "" when it passes; else in the error
	}{
		{"tlp:green", ""},
		{"tlp:amber+strict", ""},
		{"tlp:ex:chr", ""},
		{"PAP:GREEN", ""},
		{`admiralty-scale:source-reliability="b"`, ""},
		{`admiralty-scale:information-credibility="2"`, ""},
		{`estimative-language:likelihood-probability="very-unlikely"`, ""},
		{`circl:incident-classification="phishing"`, ""},
		{"circl:significant", ""},
		{`false-positive:risk="low"`, ""},
		// Free labels, and tags of namespaces it does not know.
		{"trojan", ""},
		{"Seen in: our sector", ""},
		{`misp-galaxy:threat-actor="Sofacy"`, ""},
		{"https://example.org/x", ""},
		// Wrong tags of known namespaces.
		{"tlp:purple", `taxonomy tlp has no predicate "purple"; it has "red", "amber"`},
		{"tlp:GREEN", "the taxonomy spells it tlp:green"},
		{"pap:green", "the taxonomy spells it PAP:GREEN"},
		{`tlp:green="yes"`, "tlp:green takes no value: write tlp:green"},
		{"admiralty-scale:source-reliability", `takes a value, one of "a", "b"`},
		{`admiralty-scale:source-reliability="z"`, `has no value "z"; it has "a", "b", "c"`},
		{`admiralty-scale:source-reliability="B"`, `the taxonomy spells it admiralty-scale:source-reliability="b"`},
		{`circl:incident-classification="nothing"`, `and 15 more`},
	} {
		err := s.Check(c.label)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.label, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: accepted, want an error with %q", c.label, c.want)
		case c.want != "" && (!strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "label ") || !errors.Is(err, ErrUnknownTag)):
			t.Errorf("%s: %v, want %q", c.label, err, c.want)
		}
	}
}

// TestParseTag reads machine tags, and leaves other labels alone.
func TestParseTag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Tag
		ok   bool
	}{
		{"tlp:red", Tag{Namespace: "tlp", Predicate: "red"}, true},
		{"tlp:ex:chr", Tag{Namespace: "tlp", Predicate: "ex:chr"}, true},
		{`a:b="c d"`, Tag{Namespace: "a", Predicate: "b", Value: "c d", HasValue: true}, true},
		{`a:b="x=y"`, Tag{Namespace: "a", Predicate: "b", Value: "x=y", HasValue: true}, true},
		{`a:b=""`, Tag{}, false},
		{`a:b=c`, Tag{}, false},
		{`a:b="c"d"`, Tag{}, false},
		{"a:", Tag{}, false},
		{":b", Tag{}, false},
		{"plain", Tag{}, false},
		{"two words: here", Tag{}, false},
	} {
		got, ok := ParseTag(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseTag(%q) = %+v, %t; want %+v, %t", c.in, got, ok, c.want, c.ok)
		}
		if ok && got.String() != c.in {
			t.Errorf("ParseTag(%q).String() = %q", c.in, got.String())
		}
	}
}

// TestParseRefuses names what is wrong with a taxonomy file.
func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"not JSON", `{`, "taxonomy:"},
		{"no namespace", `{"predicates":[{"value":"a"}]}`, "namespace"},
		{"colon in namespace", `{"namespace":"a:b","predicates":[{"value":"a"}]}`, "namespace"},
		{"no predicates", `{"namespace":"n"}`, "no predicates"},
		{"empty predicate", `{"namespace":"n","predicates":[{"value":""}]}`, "predicates[0]"},
		{"quote in predicate", `{"namespace":"n","predicates":[{"value":"a\""}]}`, "predicates[0]"},
		{"control character", `{"namespace":"n","predicates":[{"value":"a\u0001"}]}`, "control character"},
		{"predicate twice", `{"namespace":"n","predicates":[{"value":"a"},{"value":"a"}]}`, `predicate "a" twice`},
		{"values of an undeclared predicate", `{"namespace":"n","predicates":[{"value":"a"}],"values":[{"predicate":"b","entry":[{"value":"x"}]}]}`, `"b" is not declared`},
		{"values twice", `{"namespace":"n","predicates":[{"value":"a"}],"values":[{"predicate":"a","entry":[{"value":"x"}]},{"predicate":"a","entry":[{"value":"y"}]}]}`, "twice"},
		{"value twice", `{"namespace":"n","predicates":[{"value":"a"}],"values":[{"predicate":"a","entry":[{"value":"x"},{"value":"x"}]}]}`, `value "x"`},
		{"empty values", `{"namespace":"n","predicates":[{"value":"a"}],"values":[{"predicate":"a","entry":[]}]}`, "empty list"},
		{"quote in value", `{"namespace":"n","predicates":[{"value":"a"}],"values":[{"predicate":"a","entry":[{"value":"x\"y"}]}]}`, "entry[0]"},
	} {
		_, err := Parse([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// FuzzParse: Parse never panics, and every tag of a taxonomy it accepts
// reads back with ParseTag and passes Check. The embedded taxonomies are
// the seeds, with the corpus kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("data", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"namespace":"n","predicates":[{"value":"a:b"}],"values":[{"predicate":"a:b","entry":[{"value":"x=y z"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := Parse(b)
		if err != nil {
			return
		}
		s, err := NewSet(tx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tx.Predicates {
			tags := []Tag{{Namespace: tx.Namespace, Predicate: p.Value}}
			if len(p.Values) > 0 {
				tags = tags[:0]
				for _, e := range p.Values {
					tags = append(tags, Tag{Namespace: tx.Namespace, Predicate: p.Value, Value: e.Value, HasValue: true})
				}
			}
			for _, tag := range tags {
				got, ok := ParseTag(tag.String())
				if !ok || got != tag {
					t.Fatalf("ParseTag(%q) = %+v, %t", tag.String(), got, ok)
				}
				if err := s.Check(tag.String()); err != nil {
					t.Fatalf("Check(%q): %v", tag.String(), err)
				}
			}
		}
	})
}
