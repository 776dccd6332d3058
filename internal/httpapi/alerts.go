package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/node"
)

// AlertNote is the optional body of POST /api/v1/alerts/{id}/ack and
// /resolve: why the status changes.
type AlertNote struct {
	Note string `json:"note,omitempty"`
}

// NodeKey is the body of GET /api/v1/node/key: the public key webhook
// receivers verify the node's signatures with.
type NodeKey struct {
	// Algorithm is always "ed25519".
	Algorithm string `json:"algorithm"`
	// PublicKey is the raw 32-byte public key, base64 (standard, padded).
	PublicKey string `json:"public_key"`
}

// listAlerts serves GET /api/v1/alerts[?status=S&tier=T].
func (h *handler) listAlerts(w http.ResponseWriter, r *http.Request) {
	f := node.AlertFilter{Status: correlate.Status(r.URL.Query().Get("status")), Tier: r.URL.Query().Get("tier")}
	list, err := h.svc.ListAlerts(r.Context(), principal(r), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"alerts": list})
}

// getAlert serves GET /api/v1/alerts/{id}.
func (h *handler) getAlert(w http.ResponseWriter, r *http.Request) {
	a, err := h.svc.Alert(r.Context(), principal(r), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, a)
}

// ackAlert serves POST /api/v1/alerts/{id}/ack.
func (h *handler) ackAlert(w http.ResponseWriter, r *http.Request) {
	h.alertTransition(w, r, h.svc.AckAlert)
}

// resolveAlert serves POST /api/v1/alerts/{id}/resolve.
func (h *handler) resolveAlert(w http.ResponseWriter, r *http.Request) {
	h.alertTransition(w, r, h.svc.ResolveAlert)
}

func (h *handler) alertTransition(w http.ResponseWriter, r *http.Request, apply func(ctx context.Context, p entente.Principal, id, note string) (node.AlertInfo, error)) {
	var body AlertNote
	if r.ContentLength != 0 {
		if err := h.decodeAPIBody(w, r, &body); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	a, err := apply(r.Context(), principal(r), r.PathValue("id"), body.Note)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, a)
}

// nodeKey serves GET /api/v1/node/key.
func (h *handler) nodeKey(w http.ResponseWriter, r *http.Request) {
	pub, err := h.svc.PublicKey(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, NodeKey{Algorithm: "ed25519", PublicKey: base64.StdEncoding.EncodeToString(pub)})
}

// AlertStats is the body of GET /api/v1/alerts/stats: what correlation
// did with the sightings the node received since it started.
type AlertStats struct {
	Accepted   uint64            `json:"accepted"`
	Duplicates uint64            `json:"duplicates"`
	Rejected   map[string]uint64 `json:"rejected"`
	Threats    int               `json:"threats"`
}

// alertStats serves GET /api/v1/alerts/stats.
func (h *handler) alertStats(w http.ResponseWriter, r *http.Request) {
	st, err := h.svc.AlertStats(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := AlertStats{Accepted: st.Accepted, Duplicates: st.Duplicates, Threats: st.Threats, Rejected: map[string]uint64{}}
	for reason := correlate.ReasonInvalid; reason <= correlate.ReasonPast; reason++ {
		out.Rejected[reason.String()] = st.RejectedBy(reason)
	}
	h.writeAPI(w, r, http.StatusOK, out)
}
