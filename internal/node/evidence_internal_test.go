package node

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/stix"
)

// TestEvidenceOnly: a batch is pushed later only when every object in it
// is a version of an alert already stored with the same tier and state.
func TestEvidenceOnly(t *testing.T) {
	s := &Service{}
	alert := func(id, tier string, orgs int, withdrawn, revoked bool) *stix.Object {
		raw := fmt.Sprintf(`{"type":%q,"id":%q,"tier":%q,"organisation_count":%d,"withdrawn":%v,"revoked":%v}`, correlate.AlertType, id, tier, orgs, withdrawn, revoked)
		return &stix.Object{Type: correlate.AlertType, ID: id, Raw: json.RawMessage(raw)}
	}
	const a, b = "x-entente-alert--00000000-0000-4000-8000-00000000000a", "x-entente-alert--00000000-0000-4000-8000-00000000000b"
	sighting := &stix.Object{Type: "sighting", ID: "sighting--00000000-0000-4000-8000-000000000001", Raw: json.RawMessage(`{}`)}
	for _, step := range []struct {
		name string
		objs []*stix.Object
		want bool
	}{
		{"a new alert", []*stix.Object{alert(a, "national", 2, false, false)}, false},
		{"its evidence grew", []*stix.Object{alert(a, "national", 3, false, false)}, true},
		{"evidence with a new alert", []*stix.Object{alert(a, "national", 4, false, false), alert(b, "national", 2, false, false)}, false},
		{"evidence of both", []*stix.Object{alert(a, "national", 5, false, false), alert(b, "national", 3, false, false)}, true},
		{"escalated", []*stix.Object{alert(a, "regional", 6, false, false)}, false},
		{"evidence at the new tier", []*stix.Object{alert(a, "regional", 7, false, false)}, true},
		{"withdrawn", []*stix.Object{alert(a, "regional", 7, true, false)}, false},
		{"superseded", []*stix.Object{alert(b, "national", 3, false, true)}, false},
		{"evidence with a sighting", []*stix.Object{alert(a, "regional", 7, true, false), sighting}, false},
		{"nothing", nil, false},
	} {
		s.prop.mu.Lock()
		got := s.evidenceOnly(step.objs)
		s.prop.mu.Unlock()
		if got != step.want {
			t.Errorf("%s: pushed later %v, want %v", step.name, got, step.want)
		}
	}
}
