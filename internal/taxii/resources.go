package taxii

import (
	"strconv"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// Discovery is the discovery resource (section 4.1.1), returned by
// GET /taxii2/.
type Discovery struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Contact     string `json:"contact,omitempty"`
	// Default is the URL of the default API root.
	Default string `json:"default,omitempty"`
	// APIRoots lists the URLs of the API roots the requester may use.
	APIRoots []string `json:"api_roots,omitempty"`
}

// APIRoot is the API root resource (section 4.2.1).
type APIRoot struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// Versions lists the TAXII media types the API root speaks.
	Versions []string `json:"versions"`
	// MaxContentLength is the largest request body, in bytes, the API
	// root accepts.
	MaxContentLength int64 `json:"max_content_length"`
}

// Collection is one collection resource (section 5.2.1) as the
// requesting principal sees it: CanRead and CanWrite are its own rights.
type Collection struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Alias       string   `json:"alias,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types,omitempty"`
}

// Collections is the collections resource (section 5.1.1). The list is
// omitted when there are none.
type Collections struct {
	Collections []Collection `json:"collections,omitempty"`
}

// ManifestRecord describes one version of one object (section 5.3.2).
type ManifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type,omitempty"`
}

// Manifest is the manifest resource (section 5.3.1). Next is not among
// the resource's properties in the specification, which defines the next
// URL parameter for the manifest endpoint but gives clients no token for
// it; the node adds it (clients ignore properties they do not know) so
// that paging through entries that share a date_added has no gap.
type Manifest struct {
	More    bool             `json:"more"`
	Next    string           `json:"next,omitempty"`
	Objects []ManifestRecord `json:"objects,omitempty"`
}

// Versions is the versions resource (section 5.7.1). Next is added for
// the reason given on [Manifest].
type Versions struct {
	More     bool     `json:"more"`
	Next     string   `json:"next,omitempty"`
	Versions []string `json:"versions,omitempty"`
}

// Status values (section 4.3.1).
const (
	StatusComplete = entente.StatusComplete
	StatusPending  = entente.StatusPending
)

// StatusDetail names one object of a request and, for failures, why it
// was refused (section 4.3.2); see [entente.StatusDetail].
type StatusDetail = entente.StatusDetail

// Status is the status resource (section 4.3.1) of one Add Objects
// request; see [entente.Status].
type Status = entente.Status

// Error is the error message resource (section 3.6.1). HTTPStatus is a
// string, as the specification defines it.
type Error struct {
	Title           string            `json:"title"`
	Description     string            `json:"description,omitempty"`
	ErrorID         string            `json:"error_id,omitempty"`
	ErrorCode       string            `json:"error_code,omitempty"`
	HTTPStatus      string            `json:"http_status,omitempty"`
	ExternalDetails string            `json:"external_details,omitempty"`
	Details         map[string]string `json:"details,omitempty"`
}

// NewError returns the error message for an HTTP status: title is the
// short summary, description the client-safe explanation and code a
// machine-readable error code.
func NewError(httpStatus int, title, description, code string) Error {
	return Error{
		Title:       title,
		Description: description,
		ErrorCode:   code,
		HTTPStatus:  strconv.Itoa(httpStatus),
	}
}

// Timestamp formats t as TAXII timestamps are written: a STIX timestamp
// with at least millisecond precision and every sub-millisecond digit t
// has, so that a date_added given back as added_after selects exactly the
// entries after it.
func Timestamp(t time.Time) string { return stix.FormatTimestamp(t) }
