package feed

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/google/uuid"
)

// Identify says what kind of feed data is, in words ("a MISP event", "a
// MISP feed's manifest.json", "a CSV feed", "a plain list of values"),
// when it is one this package imports and not STIX; "" otherwise (STIX,
// or nothing recognisable). It lets a command that reads STIX point to
// the one that reads feeds.
func Identify(data []byte) string {
	h := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(h) == 0 {
		return ""
	}
	switch h[0] {
	case '{':
		return identifyObject(h)
	case '[':
		dec := json.NewDecoder(bytes.NewReader(h))
		if _, err := dec.Token(); err != nil || !dec.More() {
			return ""
		}
		var first json.RawMessage
		if dec.Decode(&first) != nil {
			return ""
		}
		if w := identifyObject(bytes.TrimSpace(first)); w != "" {
			return "a list of MISP events"
		}
		return ""
	}
	head := h[:min(len(h), 4096)]
	switch Detect(head) {
	case FormatCSV:
		return "a CSV feed"
	case FormatPlain:
		// A plain list only if its first values are values.
		values, good := 0, 0
		for line := range bytes.Lines(head) {
			vs, ok := plainValues(string(line))
			if !ok {
				continue
			}
			for _, v := range vs {
				values++
				if _, _, err := detect(v); err == nil {
					good++
				}
			}
			if values >= 10 {
				break
			}
		}
		if values > 0 && good*2 > values {
			return "a plain list of values"
		}
	}
	return ""
}

// identifyObject names a JSON object that is a MISP event, a MISP search
// response or a MISP feed manifest, reading only its top-level members'
// names (and the values of few).
func identifyObject(obj []byte) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	keys, uuids := 0, 0
	var skip json.RawMessage
	hasUUID, hasInfo, hasAttr := false, false, false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := t.(string)
		switch k {
		case "type":
			return "" // STIX names its type; MISP does not
		case "Event":
			return "a MISP event"
		case "response":
			return "MISP events (a search response)"
		case "uuid":
			hasUUID = true
		case "info":
			hasInfo = true
		case "Attribute", "Object":
			hasAttr = true
		}
		keys++
		if uuid.Validate(k) == nil {
			uuids++
		}
		if err := dec.Decode(&skip); err != nil && err != io.EOF {
			return ""
		}
	}
	switch {
	case keys > 0 && uuids == keys:
		return "a MISP feed's manifest.json (import its directory)"
	case hasAttr || (hasUUID && hasInfo):
		return "a MISP event"
	}
	return ""
}
