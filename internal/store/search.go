package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// SearchStore is full-text search over the latest version of every
// object a store holds, and the per-type browse list. Every backend
// implements it alongside [Store]; the node service obtains it by type
// assertion.
//
// A search sees every object stored before it: the index is kept up to
// date by the store (in the transaction that writes the objects, or, on
// SQLite, by the writer when it is idle and at once before a search), and
// built for objects stored before it existed by the migration that
// created it, so it answers the first query after a start as fast as the
// next. It indexes names, aliases, external ids (T1566, CVE-…),
// observable values and the values an indicator's pattern compares, with
// more weight than descriptions, labels and contents.
//
// Search reads no object for an audience: callers release what it finds
// through the policy gate.
type SearchStore interface {
	// SearchObjects returns one page of the latest versions that match
	// q: ranked by relevance, best first, when q.Text is set; else
	// newest modified first (the browse list). EINVALID if q.Next is not
	// a cursor this query issued or q.Text has no word to search.
	SearchObjects(ctx context.Context, q SearchQuery) (SearchPage, error)
}

// SearchQuery selects objects to search or browse. Empty fields select
// everything.
type SearchQuery struct {
	// Text is what to search for: every word must match (the last one
	// as a prefix). Empty: the browse list.
	Text string
	// Types, TLPs, Collections (ids or aliases) and Sources
	// (created_by_ref) each restrict to the values listed. TLP values
	// are the lower-case level names ("clear", "green", "amber",
	// "amber+strict", "red") or "" for unmarked objects.
	Types, TLPs, Collections, Sources []string
	// Since and Until bound the version (modified): Since <= modified <
	// Until.
	Since, Until time.Time
	// Limit is the page size (at most MaxSearchPage; DefaultSearchPage
	// when <= 0).
	Limit int
	// Next is the cursor of the previous page.
	Next string
}

// Search page sizes.
const (
	DefaultSearchPage = 50
	MaxSearchPage     = 1000
	// MaxSearchOffset bounds how deep ranked results page: past it a
	// search has to be narrowed.
	MaxSearchOffset = 10000
)

// SearchHit is one object a search found.
type SearchHit struct {
	// Collection is the id of the collection that holds it.
	Collection string
	ID, Type   string
	// Modified is the version found (the latest).
	Modified time.Time
	// Title is the object's name, value or pattern (see [SearchDocOf]).
	Title string
	// TLP is the object's TLP level ("" when it carries none), Source its
	// created_by_ref.
	TLP, Source string
	// Score is the relevance of a text search (greater is better); 0 in
	// the browse list.
	Score float64
}

// SearchPage is one page of a search.
type SearchPage struct {
	Hits []SearchHit
	// Next is the cursor of the following page; "" on the last.
	Next string
}

// SearchDoc is what the search index holds of one object version.
type SearchDoc struct {
	// Title is the object's name, value or pattern (see [stix.Title]).
	Title string `json:"t"`
	// Names holds the strongly weighted words: name, aliases, external
	// ids, observable values, hashes, the values in a pattern.
	Names string `json:"n"`
	// Body holds description, labels, content, explanation and the
	// pattern.
	Body string `json:"b"`
	// TLP is the lower-case TLP level of the object's markings ("" for
	// none); Source its created_by_ref.
	TLP    string `json:"l"`
	Source string `json:"s"`
	// Keys are the names, aliases, external ids and values, lower-case,
	// each between '|': a search whose whole text is one of them ranks
	// the object first (see [SearchKey]).
	Keys string `json:"k"`
}

// SearchKey returns how a search text is looked for among a SearchDoc's
// Keys: its words, lower-case, joined by single spaces, between '|'.
func SearchKey(text string) string {
	return "|" + strings.ToLower(strings.Join(strings.Fields(text), " ")) + "|"
}

// docFields are the properties SearchDocOf reads.
type docFields struct {
	stix.TitleFields
	Aliases      []string `json:"aliases"`
	MitreAliases []string `json:"x_mitre_aliases"`
	Description  string   `json:"description"`
	Labels       []string `json:"labels"`
	Explanation  string   `json:"explanation"`
	CreatedByRef string   `json:"created_by_ref"`
	MarkingRefs  []string `json:"object_marking_refs"`
	ShortName    string   `json:"x_mitre_shortname"`
	ExternalRefs []struct {
		SourceName string `json:"source_name"`
		ExternalID string `json:"external_id"`
	} `json:"external_references"`
}

// SearchDocOf returns what the search index holds of the object whose
// JSON is raw. It never fails: what it cannot read it leaves out.
func SearchDocOf(raw []byte) SearchDoc {
	var f docFields
	_ = json.Unmarshal(raw, &f)
	var d SearchDoc
	var names, body []string
	addName := func(s ...string) {
		for _, v := range s {
			if v != "" {
				names = append(names, v)
			}
		}
	}
	addName(f.Name)
	addName(f.Aliases...)
	addName(f.MitreAliases...)
	addName(f.ShortName)
	for _, r := range f.ExternalRefs {
		addName(r.ExternalID)
	}
	var value string
	if len(f.Value) > 0 && f.Value[0] == '"' {
		_ = json.Unmarshal(f.Value, &value)
	} else if len(f.Value) > 0 {
		value = string(f.Value)
	}
	addName(value)
	for _, h := range f.Hashes {
		addName(h)
	}
	patternValues := stix.PatternValues(f.Pattern)
	addName(patternValues...)
	addName(f.Abstract)
	body = append(body, f.Description)
	body = append(body, f.Labels...)
	body = append(body, f.Content, f.Explanation, f.Opinion, f.RelationshipType)
	d.Names = strings.Join(names, " ")
	if len(names) > 0 {
		var k strings.Builder
		k.WriteByte('|')
		for _, n := range names {
			n = strings.ToLower(strings.Join(strings.Fields(strings.ReplaceAll(n, "|", " ")), " "))
			if n == "" || len(n) > 200 || n == strings.ToLower(f.Abstract) && len(n) > 80 {
				continue
			}
			k.WriteString(n)
			k.WriteByte('|')
		}
		if k.Len() > 1 {
			d.Keys = k.String()
		}
	}
	d.Body = strings.TrimSpace(strings.Join(body, " "))
	d.Title = f.Title()
	d.Source = f.CreatedByRef
	d.TLP = TLPOf(f.MarkingRefs)
	return d
}

// TLPOf returns the lower-case TLP level among marking refs (the most
// restrictive when several), "" when none is a TLP marking.
func TLPOf(refs []string) string {
	best, found := stix.TLPClear, false
	for _, r := range refs {
		if t, ok := stix.TLPFromMarking(r); ok {
			if !found || t > best {
				best = t
			}
			found = true
		}
	}
	if !found {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(best.String()), "tlp:")
}

// SearchWords splits a search text into its words: runs of letters and
// digits and of the characters that join them in names and values
// ('-', '.', '_', ':', '/', '@'), trimmed of those joiners. Backends
// search each word as a phrase of the tokens their own tokenizer makes of
// it, so "CVE-2021-44228" or "evil.example.com" match as written.
func SearchWords(text string) []string {
	var words []string
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-._:/@+", r))
	}) {
		w = strings.Trim(w, "-._:/@+")
		if w != "" {
			words = append(words, w)
		}
		if len(words) == 16 {
			break
		}
	}
	return words
}

// SearchCursor is the position a search page ends at: an offset into
// ranked results, or the (modified, seq) of the last entry of a browse
// page.
type SearchCursor struct {
	Offset   int
	Modified int64
	Seq      int64
}

// EncodeSearchCursor returns the opaque form of c, bound to whether the
// query was ranked (q.Text set).
func EncodeSearchCursor(c SearchCursor, q SearchQuery) string {
	var s string
	if q.Text != "" {
		s = "r:" + strconv.Itoa(c.Offset)
	} else {
		s = "b:" + strconv.FormatInt(c.Modified, 10) + ":" + strconv.FormatInt(c.Seq, 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// DecodeSearchCursor parses a cursor EncodeSearchCursor made for a query
// of the same kind as q. EINVALID otherwise.
func DecodeSearchCursor(next string, q SearchQuery) (SearchCursor, error) {
	bad := entente.Errorf(entente.EINVALID, "cursor: %q is not a cursor of this search", next)
	b, err := base64.RawURLEncoding.DecodeString(next)
	if err != nil {
		return SearchCursor{}, bad
	}
	parts := strings.Split(string(b), ":")
	switch {
	case q.Text != "" && len(parts) == 2 && parts[0] == "r":
		n, err := strconv.Atoi(parts[1])
		if err != nil || n < 0 || n > MaxSearchOffset {
			return SearchCursor{}, bad
		}
		return SearchCursor{Offset: n}, nil
	case q.Text == "" && len(parts) == 3 && parts[0] == "b":
		m, err1 := strconv.ParseInt(parts[1], 10, 64)
		s, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 != nil || err2 != nil {
			return SearchCursor{}, bad
		}
		return SearchCursor{Modified: m, Seq: s}, nil
	}
	return SearchCursor{}, bad
}

// SearchLimit returns the page size of a search that asks for limit.
func SearchLimit(limit int) int {
	if limit <= 0 {
		return DefaultSearchPage
	}
	return min(limit, MaxSearchPage)
}

// SearchRange returns the Since and Until of q as Unix nanoseconds,
// the widest range when unset.
func SearchRange(q SearchQuery) (since, until int64) {
	since, until = -1<<63, 1<<63-1
	if !q.Since.IsZero() {
		if n, ok := UnixNano(q.Since); ok {
			since = n
		} else if q.Since.After(time.Unix(0, 0)) {
			since = until
		}
	}
	if !q.Until.IsZero() {
		if n, ok := UnixNano(q.Until); ok {
			until = n
		} else if q.Until.Before(time.Unix(0, 0)) {
			until = -1 << 63
		}
	}
	return since, until
}
