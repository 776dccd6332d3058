package httpapi

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/taxii"
)

// apiMediaType is the media type of node API bodies.
const apiMediaType = "application/json"

// Whoami is the body of GET /api/v1/whoami.
type Whoami struct {
	KeyID string       `json:"key_id"`
	Org   string       `json:"org"`
	Role  entente.Role `json:"role"`
}

// CreatedKey is the body of POST /api/v1/keys: the key's record and its
// secret, shown this once.
type CreatedKey struct {
	entente.Key
	Secret string `json:"secret"`
}

// decodeAPIBody reads a node API request body into v: JSON, within the
// size and depth limits, with no unknown fields.
func (h *handler) decodeAPIBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != apiMediaType {
			refuseBody(w, r, h.opts.MaxBodyBytes)
			return entente.Errorf(entente.EUNSUPPORTED, "the Content-Type must be %s", apiMediaType)
		}
	}
	body, err := readBody(w, r, h.opts.MaxBodyBytes, nil)
	if err != nil {
		return err
	}
	if err := taxii.CheckJSON(body, h.opts.MaxJSONDepth); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return entente.Errorf(entente.EINVALID, "the request body does not match the expected form: %v", err)
	}
	return nil
}

func (h *handler) writeAPI(w http.ResponseWriter, r *http.Request, status int, v any) {
	h.writeJSON(w, r, status, apiMediaType, v)
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	h.writeAPI(w, r, http.StatusOK, Whoami{KeyID: p.KeyID, Org: p.Org, Role: p.Role})
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := h.svc.Keys(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if ks == nil {
		ks = []entente.Key{}
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"keys": ks})
}

func (h *handler) createKey(w http.ResponseWriter, r *http.Request) {
	var nk node.NewKey
	if err := h.decodeAPIBody(w, r, &nk); err != nil {
		h.writeError(w, r, err)
		return
	}
	secret, k, err := h.svc.CreateKey(r.Context(), principal(r), nk)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.writeAPI(w, r, http.StatusCreated, CreatedKey{Key: k, Secret: secret})
}

func (h *handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.RevokeKey(r.Context(), principal(r), r.PathValue("id")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listCollections(w http.ResponseWriter, r *http.Request) {
	cs, err := h.svc.AllCollections(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if cs == nil {
		cs = []entente.Collection{}
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"collections": cs})
}

// NewCollection is the body of POST /api/v1/collections.
type NewCollection struct {
	ID             string         `json:"id"`
	Alias          string         `json:"alias"`
	Title          string         `json:"title"`
	Description    string         `json:"description"`
	DefaultMarking string         `json:"default_marking"`
	ReadRoles      []entente.Role `json:"read_roles"`
	WriteRoles     []entente.Role `json:"write_roles"`
}

func (h *handler) createCollection(w http.ResponseWriter, r *http.Request) {
	var nc NewCollection
	if err := h.decodeAPIBody(w, r, &nc); err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := h.svc.CreateCollection(r.Context(), principal(r), entente.Collection{
		ID: nc.ID, Alias: nc.Alias, Title: nc.Title, Description: nc.Description,
		DefaultMarking: nc.DefaultMarking, ReadRoles: nc.ReadRoles, WriteRoles: nc.WriteRoles,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusCreated, c)
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeBody(w, http.StatusOK, "text/plain; charset=utf-8", []byte("ok\n"))
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := h.svc.Ready(ctx); err != nil {
		h.log.WarnContext(ctx, "not ready", "err", err, "at", time.Now().UTC())
		writeBody(w, http.StatusServiceUnavailable, "text/plain; charset=utf-8", []byte("not ready\n"))
		return
	}
	writeBody(w, http.StatusOK, "text/plain; charset=utf-8", []byte("ok\n"))
}
