package stix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
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

// envelope is the shape of the common properties for decoding.
type envelope struct {
	Type         string   `json:"type"`
	ID           string   `json:"id"`
	SpecVersion  string   `json:"spec_version"`
	Created      string   `json:"created"`
	Modified     string   `json:"modified"`
	Revoked      bool     `json:"revoked"`
	ValidUntil   string   `json:"valid_until"`
	CreatedByRef string   `json:"created_by_ref"`
	MarkingRefs  []string `json:"object_marking_refs"`
}

// Decode decodes the common properties of one STIX object from raw, which
// must be a JSON object. It checks only what it needs to decode (that
// type and id are strings, that timestamps parse); [Validate] checks the
// rest of the specification. Decode keeps raw (it does not copy it).
func Decode(raw []byte) (*Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("object is not a JSON object")
	}
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	o := &Object{
		Type:         e.Type,
		ID:           e.ID,
		SpecVersion:  e.SpecVersion,
		Revoked:      e.Revoked,
		CreatedByRef: e.CreatedByRef,
		MarkingRefs:  e.MarkingRefs,
		Raw:          json.RawMessage(raw),
	}
	var err error
	if o.Created, err = parseOptionalTimestamp("created", e.Created); err != nil {
		return nil, err
	}
	if o.Modified, err = parseOptionalTimestamp("modified", e.Modified); err != nil {
		return nil, err
	}
	if o.ValidUntil, err = parseOptionalTimestamp("valid_until", e.ValidUntil); err != nil {
		return nil, err
	}
	return o, nil
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
		return time.Time{}, fmt.Errorf("property %s: %w", prop, err)
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
