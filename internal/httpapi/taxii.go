package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/taxii"
)

// negotiate answers 406 and returns false unless the request accepts the
// TAXII media type.
func (h *handler) negotiate(w http.ResponseWriter, r *http.Request) bool {
	if taxii.Acceptable(r.Header.Get("Accept")) {
		return true
	}
	h.writeError(w, r, notAcceptable())
	return false
}

// baseURL returns the scheme and host by which the client reached us.
func (h *handler) baseURL(r *http.Request) string {
	if h.opts.PublicURL != "" {
		return h.opts.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *handler) discovery(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	cfg := h.svc.Config()
	root := h.baseURL(r) + h.root
	h.writeJSON(w, r, http.StatusOK, taxii.MediaType, taxii.Discovery{
		Title:       cfg.Title,
		Description: cfg.Description,
		Contact:     cfg.Contact,
		Default:     root,
		APIRoots:    []string{root},
	})
}

func (h *handler) apiRoot(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	cfg := h.svc.Config()
	h.writeJSON(w, r, http.StatusOK, taxii.MediaType, taxii.APIRoot{
		Title:            cfg.APIRootTitle,
		Description:      cfg.APIRootDescription,
		Versions:         []string{taxii.MediaType},
		MaxContentLength: cfg.MaxContentLength,
	})
}

// collectionView is c as principal p sees it in TAXII.
func collectionView(p entente.Principal, c entente.Collection) taxii.Collection {
	return taxii.Collection{
		ID:          c.ID,
		Title:       c.Title,
		Description: c.Description,
		Alias:       c.Alias,
		CanRead:     c.CanRead(p.Role),
		CanWrite:    c.CanWrite(p.Role),
		MediaTypes:  []string{taxii.STIXMediaType},
	}
}

func (h *handler) collections(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	p := principal(r)
	cs, err := h.svc.Collections(r.Context(), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var out taxii.Collections
	for _, c := range cs {
		out.Collections = append(out.Collections, collectionView(p, c))
	}
	h.writeJSON(w, r, http.StatusOK, taxii.MediaType, out)
}

func (h *handler) collection(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	p := principal(r)
	c, err := h.svc.Collection(r.Context(), p, r.PathValue("coll"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, taxii.MediaType, collectionView(p, c))
}

// filters parses the request's URL filters for endpoint e, answering 400
// when they are bad.
func (h *handler) filters(w http.ResponseWriter, r *http.Request, e taxii.Endpoint) (taxii.Filters, bool) {
	f, err := taxii.ParseFilters(r.URL.RawQuery, e)
	if err != nil {
		h.writeError(w, r, err)
		return f, false
	}
	return f, true
}

// setDateAddedHeaders sets X-TAXII-Date-Added-First and -Last for the
// entries of page.
func setDateAddedHeaders(w http.ResponseWriter, page entente.Page) {
	if first, last, ok := node.DateAddedRange(page); ok {
		w.Header().Set("X-TAXII-Date-Added-First", taxii.Timestamp(first))
		w.Header().Set("X-TAXII-Date-Added-Last", taxii.Timestamp(last))
	}
}

// writeEnvelope writes page as an envelope, objects verbatim.
func (h *handler) writeEnvelope(w http.ResponseWriter, page entente.Page) {
	raws := make([]json.RawMessage, len(page.Entries))
	size := 64 + len(page.Next)
	for i, e := range page.Entries {
		raws[i] = e.Raw
		size += len(e.Raw) + 1
	}
	setDateAddedHeaders(w, page)
	writeBody(w, http.StatusOK, taxii.MediaType, taxii.AppendEnvelope(make([]byte, 0, size), page.More, page.Next, raws))
}

func (h *handler) getObjects(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	f, ok := h.filters(w, r, taxii.EndpointObjects)
	if !ok {
		return
	}
	page, err := h.svc.Objects(r.Context(), principal(r), r.PathValue("coll"), f.Query(r.PathValue("coll")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeEnvelope(w, page)
}

func (h *handler) getObject(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	f, ok := h.filters(w, r, taxii.EndpointObject)
	if !ok {
		return
	}
	page, err := h.svc.Object(r.Context(), principal(r), r.PathValue("coll"), r.PathValue("obj"), f.Query(r.PathValue("coll")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeEnvelope(w, page)
}

func (h *handler) manifest(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	f, ok := h.filters(w, r, taxii.EndpointManifest)
	if !ok {
		return
	}
	page, err := h.svc.Manifest(r.Context(), principal(r), r.PathValue("coll"), f.Query(r.PathValue("coll")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := taxii.Manifest{More: page.More, Next: page.Next}
	if len(page.Entries) > 0 {
		out.Objects = make([]taxii.ManifestRecord, len(page.Entries))
	}
	for i, e := range page.Entries {
		out.Objects[i] = taxii.ManifestRecord{
			ID:        e.ID,
			DateAdded: taxii.Timestamp(e.DateAdded),
			Version:   taxii.Timestamp(e.Version),
			MediaType: taxii.STIXMediaTypeFor(e.SpecVersion),
		}
	}
	setDateAddedHeaders(w, page)
	h.writeJSON(w, r, http.StatusOK, taxii.MediaType, out)
}

func (h *handler) versions(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	f, ok := h.filters(w, r, taxii.EndpointVersions)
	if !ok {
		return
	}
	page, err := h.svc.Versions(r.Context(), principal(r), r.PathValue("coll"), r.PathValue("obj"), f.Query(r.PathValue("coll")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := taxii.Versions{More: page.More, Next: page.Next}
	for _, e := range page.Entries {
		out.Versions = append(out.Versions, taxii.Timestamp(e.Version))
	}
	setDateAddedHeaders(w, page)
	h.writeJSON(w, r, http.StatusOK, taxii.MediaType, out)
}

func (h *handler) deleteObject(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	f, ok := h.filters(w, r, taxii.EndpointDelete)
	if !ok {
		return
	}
	if err := h.svc.DeleteObject(r.Context(), principal(r), r.PathValue("coll"), r.PathValue("obj"), f.Versions, f.SpecVersions); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) addObjects(w http.ResponseWriter, r *http.Request) {
	limit := h.svc.Config().MaxContentLength
	if !taxii.Acceptable(r.Header.Get("Accept")) {
		h.refuse(w, r, limit, notAcceptable())
		return
	}
	if !taxii.ContentTypeOK(r.Header.Get("Content-Type")) {
		h.refuse(w, r, limit, entente.Errorf(entente.EUNSUPPORTED, "the Content-Type must be %s", taxii.MediaType))
		return
	}
	if err := h.svc.CheckWrite(r.Context(), principal(r), r.PathValue("coll")); err != nil {
		h.refuse(w, r, limit, err)
		return
	}
	// The body is not released when this handler returns: the objects
	// point into it and are stored after (the status is pending until
	// then). Its memory stays charged to the budget until the node
	// reports the status complete.
	objects, res, err := h.readObjects(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.budget.submit()
	st, err := h.svc.SubmitObjects(r.Context(), principal(r), r.PathValue("coll"), objects)
	switch {
	case err != nil:
		h.budget.done()
		res.release()
		h.writeError(w, r, err)
		return
	case st.Status == taxii.StatusComplete:
		h.budget.done()
		res.release()
	default:
		h.budget.holdUntilComplete(st.ID, res)
	}
	h.writeJSON(w, r, http.StatusAccepted, taxii.MediaType, st)
}

// refuse answers err to a request whose body has not been read, after
// draining the body (see drain) of at most limit bytes.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, limit int64, err error) {
	refuseBody(w, r, limit)
	h.writeError(w, r, err)
}

// notAcceptable is the error of a request whose Accept header does not
// allow the TAXII media type.
func notAcceptable() error {
	return entente.Errorf(entente.ENOTACCEPTABLE, "the Accept header must allow %s", taxii.MediaType)
}

// readObjects reads a request body of at most the API root's
// max_content_length and returns the raw objects of the envelope (or
// bundle) it holds, slices of the body, with the memory they are charged
// in the budget, which the caller releases once the objects are no
// longer used. A request past the budget's bounds is a *refusal (its
// body drained).
func (h *handler) readObjects(w http.ResponseWriter, r *http.Request) ([]json.RawMessage, *reservation, error) {
	limit := h.svc.Config().MaxContentLength
	res, err := h.budget.reserve(principal(r).KeyID, bodyCost(max(0, min(r.ContentLength, limit)), 0))
	if err != nil {
		refuseBody(w, r, limit)
		return nil, nil, err
	}
	body, err := readBody(w, r, limit, func(n int64) error { return res.grow(bodyCostFactor * n) })
	if err != nil {
		res.release()
		return nil, nil, err
	}
	objects, err := taxii.SplitEnvelope(body, h.opts.MaxJSONDepth)
	if err != nil {
		res.release()
		return nil, nil, err
	}
	if err := res.resize(bodyCost(int64(len(body)), len(objects))); err != nil {
		res.release()
		return nil, nil, err
	}
	return objects, res, nil
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	if !h.negotiate(w, r) {
		return
	}
	st, err := h.svc.Status(r.Context(), principal(r), r.PathValue("status"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, taxii.MediaType, st)
}
