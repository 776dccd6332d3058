package httpapi

import (
	"net/http"
)

// FalsePositiveRequest is the body of POST
// /api/v1/objects/{id}/false-positive: why the object is wrong.
type FalsePositiveRequest struct {
	Reason string `json:"reason,omitempty"`
}

// QuarantineRequest is the body of POST /api/v1/partners/{id}/quarantine.
type QuarantineRequest struct {
	Reason string `json:"reason,omitempty"`
}

// TrustRequest is the body of PUT /api/v1/partners/{id}/trust: a
// partner's trust weight and quota of sightings per correlation window.
// An absent field is left as it is; a negative one returns to the node's
// default.
type TrustRequest struct {
	Weight *float64 `json:"weight,omitempty"`
	Quota  *int     `json:"quota,omitempty"`
}

// falsePositive serves POST /api/v1/objects/{id}/false-positive.
func (h *handler) falsePositive(w http.ResponseWriter, r *http.Request) {
	var body FalsePositiveRequest
	if r.ContentLength != 0 {
		if err := h.decodeAPIBody(w, r, &body); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	fp, err := h.svc.MarkFalsePositive(r.Context(), principal(r), r.PathValue("id"), body.Reason)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, fp)
}

// quarantinePartner serves POST /api/v1/partners/{id}/quarantine.
func (h *handler) quarantinePartner(w http.ResponseWriter, r *http.Request) {
	var body QuarantineRequest
	if r.ContentLength != 0 {
		if err := h.decodeAPIBody(w, r, &body); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	p, err := h.svc.QuarantinePartner(r.Context(), principal(r), r.PathValue("id"), body.Reason)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, p)
}

// releasePartner serves POST /api/v1/partners/{id}/release.
func (h *handler) releasePartner(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.ReleasePartner(r.Context(), principal(r), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, p)
}

// partnerTrust serves PUT /api/v1/partners/{id}/trust.
func (h *handler) partnerTrust(w http.ResponseWriter, r *http.Request) {
	var body TrustRequest
	if err := h.decodeAPIBody(w, r, &body); err != nil {
		h.writeError(w, r, err)
		return
	}
	p, err := h.svc.SetPartnerTrust(r.Context(), principal(r), r.PathValue("id"), body.Weight, body.Quota)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, p)
}
