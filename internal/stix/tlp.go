package stix

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// TLP is a Traffic Light Protocol 2.0 level. Levels are ordered from the
// least to the most restrictive, so that t1 < t2 means t2 restricts
// sharing more than t1.
type TLP int

// The TLP 2.0 levels, least restrictive first.
const (
	TLPClear TLP = iota
	TLPGreen
	TLPAmber
	TLPAmberStrict
	TLPRed
)

// TLP20Extension is the id of the extension definition of the OASIS TLP
// 2.0 marking definitions.
const TLP20Extension = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

// tlpInfo describes one TLP 2.0 level as the OASIS TLP 2.0 marking
// definition extension publishes it.
type tlpInfo struct {
	name  string // "CLEAR"
	value string // value of the extension's tlp_2_0 property
	id    string // official marking-definition id
}

var tlpLevels = [...]tlpInfo{
	TLPClear:       {"CLEAR", "clear", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"},
	TLPGreen:       {"GREEN", "green", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"},
	TLPAmber:       {"AMBER", "amber", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"},
	TLPAmberStrict: {"AMBER+STRICT", "amber+strict", "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"},
	TLPRed:         {"RED", "red", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"},
}

// tlp1 holds the STIX 2.1 specification's TLP 1.0 marking definitions
// (definition_type "tlp"): their ids, levels and definition values.
var tlp1 = [...]struct {
	id    string
	level TLP
	value string
}{
	{"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", TLPClear, "white"},
	{"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", TLPGreen, "green"},
	{"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", TLPAmber, "amber"},
	{"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", TLPRed, "red"},
}

// TLPFromMarking returns the TLP level a marking-definition id stands for:
// the five TLP 2.0 marking definitions and the four TLP 1.0 ones of the
// STIX 2.1 specification (WHITE is read as CLEAR). The id is compared in
// its canonical spelling (see [CanonicalRef]): upper-case hex digits name
// the same marking. ok is false for any other id.
func TLPFromMarking(ref string) (TLP, bool) {
	ref = CanonicalRef(ref)
	for t, l := range tlpLevels {
		if l.id == ref {
			return TLP(t), true
		}
	}
	for _, l := range tlp1 {
		if l.id == ref {
			return l.level, true
		}
	}
	return 0, false
}

// valid reports whether t is one of the five levels.
func (t TLP) valid() bool { return t >= TLPClear && t <= TLPRed }

// MarkingID returns the id of the official TLP 2.0 marking definition of
// t, or "" when t is not a TLP level.
func (t TLP) MarkingID() string {
	if !t.valid() {
		return ""
	}
	return tlpLevels[t].id
}

// String returns the level as TLP 2.0 writes it: "TLP:CLEAR", "TLP:GREEN",
// "TLP:AMBER", "TLP:AMBER+STRICT" or "TLP:RED".
func (t TLP) String() string {
	if !t.valid() {
		return fmt.Sprintf("TLP(%d)", int(t))
	}
	return "TLP:" + tlpLevels[t].name
}

// ParseTLP parses a TLP level, case-insensitively, with or without the
// "TLP:" prefix: "clear", "TLP:AMBER+STRICT", "amber-strict". "WHITE"
// (TLP 1.0) is read as CLEAR.
func ParseTLP(s string) (TLP, error) {
	n := strings.ToUpper(strings.TrimSpace(s))
	n = strings.TrimPrefix(n, "TLP:")
	n = strings.ReplaceAll(n, "_", "+")
	if n == "AMBER-STRICT" {
		n = "AMBER+STRICT"
	}
	if n == "WHITE" {
		return TLPClear, nil
	}
	for t, l := range tlpLevels {
		if l.name == n {
			return TLP(t), nil
		}
	}
	return 0, fmt.Errorf("unknown TLP level %q (want CLEAR, GREEN, AMBER, AMBER+STRICT or RED)", s)
}

// MarshalText encodes t as its String form.
func (t TLP) MarshalText() ([]byte, error) {
	if !t.valid() {
		return nil, fmt.Errorf("invalid TLP level %d", int(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes a level with [ParseTLP].
func (t *TLP) UnmarshalText(b []byte) error {
	v, err := ParseTLP(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// TLPMarkingObject returns the official TLP 2.0 marking-definition object
// of t as the OASIS TLP 2.0 extension publishes it, or nil when t is not
// a TLP level.
func TLPMarkingObject(t TLP) json.RawMessage {
	if !t.valid() {
		return nil
	}
	l := tlpLevels[t]
	return json.RawMessage(`{"type":"marking-definition","spec_version":"2.1","id":"` + l.id +
		`","created":"2022-10-01T00:00:00.000Z","name":"TLP:` + l.name +
		`","extensions":{"` + TLP20Extension + `":{"extension_type":"property-extension","tlp_2_0":"` + l.value + `"}}}`)
}

// NewID returns a new identifier of the given object type: the type,
// "--", and a random (version 4) UUID.
func NewID(objType string) string {
	return objType + "--" + uuid.NewString()
}
