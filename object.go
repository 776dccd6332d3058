package entente

import (
	"encoding/json"
	"time"
)

// VersionFilter selects object versions as TAXII 2.1 match[version] does.
// The zero value selects the latest version (the TAXII default for the
// objects endpoint).
type VersionFilter struct {
	All   bool
	First bool
	Last  bool
	// At lists exact versions (the object's modified, or created when it
	// has no modified).
	At []time.Time
}

// IsZero reports whether no version selector was given.
func (v VersionFilter) IsZero() bool {
	return !v.All && !v.First && !v.Last && len(v.At) == 0
}

// ObjectQuery selects objects of one collection, in TAXII date_added order.
type ObjectQuery struct {
	Collection string
	// AddedAfter, if not zero, keeps only entries added strictly after it.
	AddedAfter time.Time
	// IDs, Types and SpecVersions are OR-ed within, AND-ed across; empty
	// means no restriction.
	IDs          []string
	Types        []string
	SpecVersions []string
	Versions     VersionFilter
	// Limit is the page size; the store caps it at its maximum.
	Limit int
	// Next is the opaque cursor returned as Page.Next by a previous query
	// with the same filters; "" starts at the beginning.
	Next string
	// MetadataOnly skips loading the objects' JSON (for manifests and
	// versions).
	MetadataOnly bool
}

// ObjectEntry is one stored version of one object in one collection.
type ObjectEntry struct {
	ID          string
	Type        string
	SpecVersion string
	// Version is the object's modified timestamp, or its created
	// timestamp when it has no modified, or DateAdded when it has neither.
	Version   time.Time
	DateAdded time.Time
	// Raw is the object's JSON exactly as it was accepted (nil when the
	// query asked for metadata only).
	Raw json.RawMessage
}

// Page is one page of a query's results.
type Page struct {
	Entries []ObjectEntry
	// More reports whether further entries match the query.
	More bool
	// Next is the cursor for the following page (set when More).
	Next string
}

// AddOutcome reports what happened to one object given to the store.
type AddOutcome struct {
	ID        string
	Version   time.Time
	DateAdded time.Time
	// Duplicate reports that this exact version was already in the
	// collection; nothing was written for it.
	Duplicate bool
}
