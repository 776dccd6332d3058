package stix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Object is one STIX object: its common properties, decoded, and its JSON,
// verbatim.
type Object struct {
	Type        string
	ID          string
	SpecVersion string
	// Created and Modified are zero for objects that do not carry them
	// (cyber-observable objects).
	Created  time.Time
	Modified time.Time
	Revoked  bool
	// ValidUntil is set for indicators that carry valid_until.
	ValidUntil   time.Time
	CreatedByRef string
	// MarkingRefs is object_marking_refs.
	MarkingRefs []string
	// Raw is the object's JSON exactly as received.
	Raw json.RawMessage
}

// envelope lists the common properties Decode extracts.
var envelopeProps = [...]string{"type", "id", "spec_version", "created", "modified", "revoked",
	"valid_until", "created_by_ref", "object_marking_refs"}

// Decode decodes the common properties of one STIX object from raw, which
// must be a JSON object. It checks only what it needs to decode (that
// raw is well-formed JSON, that type and id are strings, that timestamps
// parse, that no common property appears twice); [Validate] checks the
// rest of the specification. Decode keeps raw (it does not copy it).
func Decode(raw []byte) (*Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("object is not a JSON object")
	}
	o := &Object{Raw: json.RawMessage(raw)}
	var created, modified, validUntil string
	var seen uint16
	i := skipWS(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			nameStart := i
			var msg string
			if i, msg = skipMemberName(raw, i); msg != "" {
				return nil, fmt.Errorf("decode object: %w", &syntaxError{i, msg})
			}
			valStart := i
			end, se := skipValue(raw, valStart)
			if se != nil {
				return nil, fmt.Errorf("decode object: %w", se)
			}
			if name, ok := envelopeName(raw, nameStart); ok {
				bit := uint16(1) << name
				if seen&bit != 0 {
					return nil, fmt.Errorf("decode object: property %q appears more than once", envelopeProps[name])
				}
				seen |= bit
				if err := o.setEnvelope(envelopeProps[name], raw[valStart:end], &created, &modified, &validUntil); err != nil {
					return nil, fmt.Errorf("decode object: %w", err)
				}
			}
			i = skipWS(raw, end)
			if i >= len(raw) {
				return nil, fmt.Errorf("decode object: %w", &syntaxError{i, "unexpected end of input (truncated?)"})
			}
			if raw[i] == '}' {
				i++
				break
			}
			if raw[i] != ',' {
				return nil, fmt.Errorf("decode object: %w", &syntaxError{i, "expected ',' or '}' in object"})
			}
			i = skipWS(raw, i+1)
		}
	}
	if i != len(raw) {
		return nil, fmt.Errorf("decode object: %w", &syntaxError{i, "unexpected data after the object"})
	}
	var err error
	if o.Created, err = parseOptionalTimestamp("created", created); err != nil {
		return nil, err
	}
	if o.Modified, err = parseOptionalTimestamp("modified", modified); err != nil {
		return nil, err
	}
	if o.ValidUntil, err = parseOptionalTimestamp("valid_until", validUntil); err != nil {
		return nil, err
	}
	return o, nil
}

// envelopeName returns the index in envelopeProps of the member name
// whose opening quote is at raw[i].
func envelopeName(raw []byte, i int) (int, bool) {
	end, escaped, _ := scanString(raw, i)
	name := raw[i+1 : end-1]
	if escaped {
		name = []byte(unescape(name))
	}
	for k, p := range envelopeProps {
		if string(name) == p {
			return k, true
		}
	}
	return 0, false
}

// setEnvelope decodes the value v of the common property name.
func (o *Object) setEnvelope(name string, v []byte, created, modified, validUntil *string) error {
	if string(v) == "null" {
		return nil
	}
	if name == "revoked" {
		switch string(v) {
		case "true":
			o.Revoked = true
		case "false":
		default:
			return fmt.Errorf("property %q must be a boolean", name)
		}
		return nil
	}
	if name == "object_marking_refs" {
		tree, err := parseJSON(v)
		if err != nil || tree.kind != kArray {
			return fmt.Errorf("property %q must be a list of strings", name)
		}
		refs := make([]string, len(tree.obj))
		for k, m := range tree.obj {
			if e := m.val; e.kind != kString {
				return fmt.Errorf("property %q must be a list of strings", name)
			}
			refs[k] = CanonicalRef(m.val.str)
		}
		o.MarkingRefs = refs
		return nil
	}
	if v[0] != '"' {
		return fmt.Errorf("property %q must be a string", name)
	}
	s := string(v[1 : len(v)-1])
	if bytes.IndexByte(v, '\\') >= 0 {
		s = unescape(v[1 : len(v)-1])
	} else if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	switch name {
	case "type":
		o.Type = s
	case "id":
		o.ID = s
	case "spec_version":
		o.SpecVersion = s
	case "created":
		*created = s
	case "modified":
		*modified = s
	case "valid_until":
		*validUntil = s
	case "created_by_ref":
		o.CreatedByRef = CanonicalRef(s)
	}
	return nil
}

// Version returns the object's version as TAXII 2.1 defines it: modified,
// or created when there is no modified; zero when it has neither.
func (o *Object) Version() time.Time {
	if !o.Modified.IsZero() {
		return o.Modified
	}
	return o.Created
}

// MarshalJSON returns the object's JSON as it was decoded.
func (o *Object) MarshalJSON() ([]byte, error) { return o.Raw, nil }

func parseOptionalTimestamp(prop, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := ParseTimestamp(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("property %q: %w", prop, err)
	}
	return t, nil
}

// ParseTimestamp parses a STIX timestamp: RFC 3339 in UTC, with the "Z"
// suffix and optional fractional seconds.
func ParseTimestamp(s string) (time.Time, error) {
	if !strings.HasSuffix(s, "Z") || len(s) < 20 || s[10] != 'T' {
		return time.Time{}, fmt.Errorf("%q is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a STIX timestamp: %v", s, err)
	}
	return t.UTC(), nil
}

// FormatTimestamp formats t as a STIX timestamp with millisecond
// precision, or more when t has sub-millisecond digits.
func FormatTimestamp(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()%int(time.Millisecond) == 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000000Z")
}
