package entente

import (
	"strconv"

	"github.com/entente-cti/entente/internal/jsonenc"
)

// StatusDetail names one object of an addition and, for failures, why it
// was refused.
type StatusDetail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

// Status is the status of one addition of objects: how many it holds and
// what became of each. It has the shape of the TAXII 2.1 status resource
// (section 4.3.1), which is how clients see it, and of the node's stored
// status records.
type Status struct {
	ID               string         `json:"id"`
	Status           string         `json:"status"`
	RequestTimestamp string         `json:"request_timestamp,omitempty"`
	TotalCount       int            `json:"total_count"`
	SuccessCount     int            `json:"success_count"`
	Successes        []StatusDetail `json:"successes,omitempty"`
	FailureCount     int            `json:"failure_count"`
	Failures         []StatusDetail `json:"failures,omitempty"`
	PendingCount     int            `json:"pending_count"`
	Pendings         []StatusDetail `json:"pendings,omitempty"`
}

// Values of Status.Status.
const (
	StatusComplete = "complete"
	StatusPending  = "pending"
)

// AppendJSON appends to b the JSON encoding of s, byte for byte what
// json.Marshal writes for it, without its reflection: a status is
// encoded for every TAXII POST and every poll of it, with a detail per
// object.
func (s *Status) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, s.ID)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, s.Status)
	if s.RequestTimestamp != "" {
		b = append(b, `,"request_timestamp":`...)
		b = jsonenc.AppendString(b, s.RequestTimestamp)
	}
	b = append(b, `,"total_count":`...)
	b = strconv.AppendInt(b, int64(s.TotalCount), 10)
	b = append(b, `,"success_count":`...)
	b = strconv.AppendInt(b, int64(s.SuccessCount), 10)
	b = appendDetails(b, `,"successes":`, s.Successes)
	b = append(b, `,"failure_count":`...)
	b = strconv.AppendInt(b, int64(s.FailureCount), 10)
	b = appendDetails(b, `,"failures":`, s.Failures)
	b = append(b, `,"pending_count":`...)
	b = strconv.AppendInt(b, int64(s.PendingCount), 10)
	b = appendDetails(b, `,"pendings":`, s.Pendings)
	return append(b, '}')
}

// appendDetails appends member name and the list ds, unless ds is empty
// (omitempty).
func appendDetails(b []byte, name string, ds []StatusDetail) []byte {
	if len(ds) == 0 {
		return b
	}
	b = append(b, name...)
	b = append(b, '[')
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = jsonenc.AppendString(b, d.ID)
		b = append(b, `,"version":`...)
		b = jsonenc.AppendString(b, d.Version)
		if d.Message != "" {
			b = append(b, `,"message":`...)
			b = jsonenc.AppendString(b, d.Message)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}
