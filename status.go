package entente

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
