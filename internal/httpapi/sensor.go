package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/taxii"
)

// snapshot serves GET /api/v1/snapshot: the compiled indicator snapshot of
// what the key may read, with an ETag so that an unchanged snapshot costs
// a sensor one 304.
func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) {
	// The gate answers "not modified" itself: nothing is sent or audited
	// when the sensor holds the current snapshot.
	snap, err := h.svc.Snapshot(r.Context(), principal(r), r.Header.Get("If-None-Match"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", snap.ETag)
	w.Header().Set("Cache-Control", "no-cache")
	if snap.NotModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", match.SnapshotMediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(snap.Data)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(snap.Data)
}

// sightings serves POST /api/v1/sightings: a sensor reports sightings as
// a STIX bundle (application/stix+json) or a TAXII envelope; they are
// stored in the node's sightings collection and the status is returned.
func (h *handler) sightings(w http.ResponseWriter, r *http.Request) {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if !strings.HasPrefix(ct, "application/stix+json") && !taxii.ContentTypeOK(ct) && !strings.HasPrefix(ct, "application/json") {
		h.refuse(w, r, h.svc.Config().MaxContentLength,
			entente.Errorf(entente.EUNSUPPORTED, "the Content-Type must be application/stix+json;version=2.1 (a bundle)"))
		return
	}
	objects, res, err := h.readObjects(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	defer res.release()
	st, err := h.svc.AddSightings(r.Context(), principal(r), objects)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusAccepted, st)
}
