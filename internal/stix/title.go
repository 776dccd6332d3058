package stix

import (
	"encoding/json"
	"strings"
)

// maxTitle bounds a title, in bytes.
const maxTitle = 300

// TitleFields are the properties of an object that its title is made of
// (see [Title]). A decoder that reads more of an object can embed it and
// call [TitleFields.Title] instead of decoding the object twice.
type TitleFields struct {
	Type             string            `json:"type"`
	Name             string            `json:"name"`
	Value            json.RawMessage   `json:"value"`
	Pattern          string            `json:"pattern"`
	Abstract         string            `json:"abstract"`
	Content          string            `json:"content"`
	Opinion          string            `json:"opinion"`
	RelationshipType string            `json:"relationship_type"`
	Hashes           map[string]string `json:"hashes"`
	SightingOfRef    string            `json:"sighting_of_ref"`
}

// Title returns how people call an object: its name; else its value (an
// observable), pattern, abstract (a note), "opinion: …", relationship
// type, a hash of a file or its content; else its type. Never its id alone.
// Whitespace runs become one space and a long title is cut at 300 bytes.
func Title(raw []byte) string {
	var f TitleFields
	_ = json.Unmarshal(raw, &f)
	return f.Title()
}

// Title returns the title of the object these fields were decoded from
// (see the function [Title]).
func (f *TitleFields) Title() string {
	var value string
	if len(f.Value) > 0 && f.Value[0] == '"' {
		_ = json.Unmarshal(f.Value, &value)
	} else if len(f.Value) > 0 {
		value = string(f.Value)
	}
	t := ""
	for _, c := range []string{f.Name, value, f.Abstract, f.Pattern} {
		if strings.TrimSpace(c) != "" {
			t = c
			break
		}
	}
	switch {
	case t != "":
	case f.Opinion != "":
		t = "opinion: " + f.Opinion
	case f.RelationshipType != "":
		t = f.RelationshipType
	case f.SightingOfRef != "":
		t = "sighting of " + f.SightingOfRef
	case len(f.Hashes) > 0:
		for _, k := range []string{"SHA-256", "SHA-1", "MD5", "SHA-512"} {
			if h := f.Hashes[k]; h != "" {
				t = h
				break
			}
		}
	}
	if t == "" && f.Content != "" {
		t = f.Content
	}
	if t == "" {
		t = f.Type
	}
	t = strings.Join(strings.Fields(t), " ")
	if len(t) > maxTitle {
		cut := maxTitle
		for cut > 0 && t[cut]&0xC0 == 0x80 {
			cut--
		}
		t = t[:cut] + "…"
	}
	return t
}

// PatternValues returns the string literals a STIX pattern compares
// ('198.51.100.1', 'evil.example.com'…), in order, without quotes.
func PatternValues(p string) []string {
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] != '\'' {
			continue
		}
		var b strings.Builder
		j := i + 1
		for ; j < len(p); j++ {
			if p[j] == '\\' && j+1 < len(p) {
				j++
				b.WriteByte(p[j])
				continue
			}
			if p[j] == '\'' {
				break
			}
			b.WriteByte(p[j])
		}
		if b.Len() > 0 {
			out = append(out, b.String())
		}
		i = j
	}
	return out
}
