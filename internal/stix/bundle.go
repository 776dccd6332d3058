package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// BundleError is an error in reading a bundle: at which object (its
// index in "objects", and its id when known) and at which byte offset of
// the input it happened.
type BundleError struct {
	Index    int    // object index, or -1 for the bundle itself
	ObjectID string // id of the object, when known
	Offset   int64  // byte offset in the input
	Err      error
}

// Error names the object index, id and byte offset.
func (e *BundleError) Error() string {
	switch {
	case e.Index < 0:
		return fmt.Sprintf("bundle: byte offset %d: %v", e.Offset, e.Err)
	case e.ObjectID != "":
		return fmt.Sprintf("bundle object %d (%s) at byte offset %d: %v", e.Index, e.ObjectID, e.Offset, e.Err)
	default:
		return fmt.Sprintf("bundle object %d at byte offset %d: %v", e.Index, e.Offset, e.Err)
	}
}

// Unwrap returns the underlying error.
func (e *BundleError) Unwrap() error { return e.Err }

// ErrTruncated reports input that ends in the middle of a JSON value.
var ErrTruncated = errors.New("input is truncated")

// ReadBundle reads r, which holds a STIX bundle
// ({"type":"bundle","id":...,"objects":[...]}), a bare JSON array of
// objects, or a single object, and calls fn with each object's index and
// verbatim JSON, in order. It checks the JSON syntax of the whole input
// before calling fn, so a malformed or truncated input yields an error
// and no call; it does not check the objects' content (see [Decode] and
// [Validate]; callers may validate objects in parallel). The raw slices
// share one buffer holding the whole input and stay valid after
// ReadBundle returns; fn must not modify them. An error from fn stops the
// reading and is returned wrapped in a *BundleError naming the object's
// index, id and offset.
func ReadBundle(r io.Reader, fn func(index int, raw json.RawMessage) error) error {
	data, err := readAll(r)
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	return ScanBundle(data, fn)
}

// readAll reads r to the end, sizing the buffer in one step when r
// knows its length.
func readAll(r io.Reader) ([]byte, error) {
	size := -1
	switch v := r.(type) {
	case interface{ Len() int }:
		size = v.Len()
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			size = int(fi.Size())
		}
	}
	if size < 0 {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// ScanBundle is [ReadBundle] over input already in memory. The raw slices
// passed to fn are sub-slices of data.
func ScanBundle(data []byte, fn func(index int, raw json.RawMessage) error) error {
	i := skipWS(data, 0)
	if bytes.HasPrefix(data[i:], []byte("\xEF\xBB\xBF")) {
		i = skipWS(data, i+3) // UTF-8 byte order mark
	}
	if i >= len(data) {
		return &BundleError{Index: -1, Offset: int64(i), Err: errors.New("empty input: want a bundle, a list of objects or an object")}
	}
	switch data[i] {
	case '[':
		spans, end, err := spanObjects(data, i)
		if err != nil {
			return err
		}
		if err := trailing(data, end); err != nil {
			return err
		}
		return emit(data, spans, fn)
	case '{':
	default:
		return &BundleError{Index: -1, Offset: int64(i), Err: fmt.Errorf("unexpected character %q: want a bundle, a list of objects or an object", data[i])}
	}
	// An object: a bundle or a single STIX object.
	start := i
	typ, spans, end, err := scanTop(data, i)
	if err != nil {
		return err
	}
	if err := trailing(data, end); err != nil {
		return err
	}
	if typ != "bundle" {
		if err := fn(0, json.RawMessage(data[start:end:end])); err != nil {
			return &BundleError{Index: 0, ObjectID: rawID(data[start:end]), Offset: int64(start), Err: err}
		}
		return nil
	}
	return emit(data, spans, fn)
}

// trailing checks that only white space follows the top-level value.
func trailing(data []byte, end int) error {
	if j := skipWS(data, end); j != len(data) {
		return &BundleError{Index: -1, Offset: int64(j), Err: errors.New("unexpected data after the end of the bundle")}
	}
	return nil
}

// syntaxErr turns a syntax error into a BundleError, saying when the
// input is truncated.
func syntaxErr(data []byte, index int, id string, se *syntaxError) error {
	var err error = se
	if se.off >= len(data) {
		err = fmt.Errorf("%w: %s", ErrTruncated, se.msg)
	}
	return &BundleError{Index: index, ObjectID: id, Offset: int64(se.off), Err: err}
}

// scanTop checks the top-level object at data[i] and returns the value of
// its "type" member (if a string), the extents of the objects of its
// "objects" list, and the offset after the object.
func scanTop(data []byte, i int) (typ string, spans []span, end int, err error) {
	badObjects := -1
	var objectsErr error
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return "", nil, i + 1, nil
	}
	for {
		var msg string
		nameStart := i
		if i, msg = skipMemberName(data, i); msg != "" {
			return "", nil, 0, syntaxErr(data, -1, "", &syntaxError{i, msg})
		}
		nameEnd, escaped, _ := scanString(data, nameStart)
		name := string(data[nameStart+1 : nameEnd-1])
		if escaped {
			name = unescape(data[nameStart+1 : nameEnd-1])
		}
		valStart := i
		var valEnd int
		if name == "objects" && valStart < len(data) && data[valStart] == '[' {
			var spanErr error
			if spans, valEnd, spanErr = spanObjects(data, valStart); spanErr != nil {
				// Not a list of objects: an error for a bundle, but any
				// other object may have such a property.
				var se *syntaxError
				if valEnd, se = skipValue(data, valStart); se != nil {
					return "", nil, 0, spanErr
				}
				objectsErr = spanErr
			}
		} else {
			var se *syntaxError
			if valEnd, se = skipValue(data, valStart); se != nil {
				return "", nil, 0, syntaxErr(data, -1, "", se)
			}
			if name == "objects" {
				badObjects = valStart
			}
		}
		if name == "type" && data[valStart] == '"' {
			typ = string(data[valStart+1 : valEnd-1])
		}
		i = skipWS(data, valEnd)
		if i >= len(data) {
			return "", nil, 0, syntaxErr(data, -1, "", &syntaxError{i, "unexpected end of input"})
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			if typ == "bundle" && objectsErr != nil {
				return "", nil, 0, objectsErr
			}
			if typ == "bundle" && badObjects >= 0 {
				return "", nil, 0, &BundleError{Index: -1, Offset: int64(badObjects), Err: errors.New(`bundle property "objects" must be a list`)}
			}
			return typ, spans, i + 1, nil
		default:
			return "", nil, 0, syntaxErr(data, -1, "", &syntaxError{i, "expected ',' or '}'"})
		}
	}
}

// span is the extent of one object in the input.
type span struct{ start, end int }

// spanObjects checks the JSON list at data[i] whose elements must be
// objects and returns their extents and the offset after the list.
func spanObjects(data []byte, i int) ([]span, int, error) {
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == ']' {
		return nil, i + 1, nil
	}
	spans := make([]span, 0, 64)
	for index := 0; ; index++ {
		if i >= len(data) {
			return nil, 0, syntaxErr(data, index, "", &syntaxError{i, "unexpected end of input"})
		}
		start := i
		end, se := skipValue(data, i)
		if se != nil {
			id := ""
			if data[start] == '{' {
				id = rawID(data[start:se.off])
			}
			return nil, 0, syntaxErr(data, index, id, se)
		}
		if data[start] != '{' {
			return nil, 0, &BundleError{Index: index, Offset: int64(start), Err: errors.New("a STIX object must be a JSON object")}
		}
		spans = append(spans, span{start, end})
		i = skipWS(data, end)
		if i >= len(data) {
			return nil, 0, syntaxErr(data, index, "", &syntaxError{i, "unexpected end of input after an object"})
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case ']':
			return spans, i + 1, nil
		default:
			return nil, 0, syntaxErr(data, index, "", &syntaxError{i, "expected ',' or ']' after an object"})
		}
	}
}

// emit calls fn for each span.
func emit(data []byte, spans []span, fn func(int, json.RawMessage) error) error {
	for index, sp := range spans {
		raw := data[sp.start:sp.end:sp.end]
		if err := fn(index, json.RawMessage(raw)); err != nil {
			return &BundleError{Index: index, ObjectID: rawID(raw), Offset: int64(sp.start), Err: err}
		}
	}
	return nil
}

// rawID returns the top-level "id" string of a (possibly incomplete)
// JSON object, or "" when it cannot be found cheaply.
func rawID(raw []byte) string {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return ""
	}
	i = skipWS(raw, i+1)
	for i < len(raw) && raw[i] == '"' {
		nameEnd, _, msg := scanString(raw, i)
		if msg != "" {
			return ""
		}
		name := raw[i+1 : nameEnd-1]
		j := skipWS(raw, nameEnd)
		if j >= len(raw) || raw[j] != ':' {
			return ""
		}
		j = skipWS(raw, j+1)
		end, se := skipValue(raw, j)
		if se != nil {
			return ""
		}
		if string(name) == "id" && raw[j] == '"' {
			var s string
			if json.Unmarshal(raw[j:end], &s) == nil {
				return s
			}
			return ""
		}
		i = skipWS(raw, end)
		if i >= len(raw) || raw[i] != ',' {
			return ""
		}
		i = skipWS(raw, i+1)
	}
	return ""
}
