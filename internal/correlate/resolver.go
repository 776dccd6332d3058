package correlate

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/stix"
)

// ThreatResolver maps what a sighting sighted to the threat it belongs
// to. An indicator belongs to the malware or campaign it indicates
// ("indicates" relationships); when it indicates several, the
// lexicographically smallest id is chosen, so every node that holds the
// same relationships resolves the same way. It is safe for concurrent use.
type ThreatResolver struct {
	mu      sync.RWMutex
	targets map[string]string // indicator id → smallest threat id
}

// NewThreatResolver returns an empty resolver.
func NewThreatResolver() *ThreatResolver {
	return &ThreatResolver{targets: make(map[string]string)}
}

// relationship holds the properties AddRelationship reads.
type relationship struct {
	Type             string `json:"type"`
	ID               string `json:"id"`
	RelationshipType string `json:"relationship_type"`
	SourceRef        string `json:"source_ref"`
	TargetRef        string `json:"target_ref"`
	Revoked          bool   `json:"revoked"`
}

// IsThreatType reports whether objects of type t are threats in their own
// right: malware and campaigns.
func IsThreatType(t string) bool { return t == "malware" || t == "campaign" }

func typeOf(id string) string {
	t, _, ok := strings.Cut(id, "--")
	if !ok {
		return ""
	}
	return t
}

// AddRelationship reads one STIX object; if it is an "indicates"
// relationship from an indicator to a malware or campaign, it records it
// and returns true. Other objects are ignored; malformed JSON is an error.
func (r *ThreatResolver) AddRelationship(raw json.RawMessage) (bool, error) {
	var rel relationship
	if err := json.Unmarshal(raw, &rel); err != nil {
		return false, fmt.Errorf("read relationship: %w", err)
	}
	if rel.Type != "relationship" || rel.RelationshipType != "indicates" || rel.Revoked {
		return false, nil
	}
	if typeOf(rel.SourceRef) != "indicator" || !IsThreatType(typeOf(rel.TargetRef)) {
		return false, nil
	}
	r.Add(rel.SourceRef, rel.TargetRef)
	return true, nil
}

// Add records that indicator indicates threat.
func (r *ThreatResolver) Add(indicator, threat string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.targets[indicator]; !ok || threat < cur {
		r.targets[indicator] = threat
	}
}

// Resolve returns the threat of a sighted object: the malware or campaign
// an indicator indicates, else the object itself. known reports whether the
// object exists on the node (the caller's store knows); an unknown object
// resolves to the empty key, which [Engine.Add] refuses.
func (r *ThreatResolver) Resolve(ref string, known bool) ThreatKey {
	if !known || ref == "" {
		return ""
	}
	r.mu.RLock()
	t, ok := r.targets[ref]
	r.mu.RUnlock()
	if ok {
		return ThreatKey(t)
	}
	return ThreatKey(ref)
}

func parseOptional(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return stix.ParseTimestamp(s)
}
