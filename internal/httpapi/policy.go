package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/entente-cti/entente/internal/taxiiclient"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
)

// This file serves the sharing policy and federation part of the node API:
// partners, agreements and their preview, the audit log, and peers. The
// node service enforces the roles (admin; the audit log also analysts).

func (h *handler) listPartners(w http.ResponseWriter, r *http.Request) {
	ps, err := h.svc.Partners(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if ps == nil {
		ps = []policy.Party{}
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"partners": ps})
}

func (h *handler) putPartner(w http.ResponseWriter, r *http.Request) {
	var p policy.Party
	if err := h.decodeAPIBody(w, r, &p); err != nil {
		h.writeError(w, r, err)
		return
	}
	if id := r.PathValue("id"); p.ID == "" {
		p.ID = id
	} else if p.ID != id {
		h.writeError(w, r, entente.Errorf(entente.EINVALID, "id: the body names %q but the URL %q", p.ID, id))
		return
	}
	if err := h.svc.PutPartner(r.Context(), principal(r), p); err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, p)
}

func (h *handler) removePartner(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.RemovePartner(r.Context(), principal(r), r.PathValue("id")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listAgreements(w http.ResponseWriter, r *http.Request) {
	as, err := h.svc.Agreements(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if as == nil {
		as = []policy.Agreement{}
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"agreements": as})
}

// agreementBody decodes the agreement a request's body states for the
// partner its URL names (the body may leave the partner's id out); on
// error it answers and returns false.
func (h *handler) agreementBody(w http.ResponseWriter, r *http.Request) (policy.Agreement, bool) {
	var a policy.Agreement
	if err := h.decodeAPIBody(w, r, &a); err != nil {
		h.writeError(w, r, err)
		return a, false
	}
	if id := r.PathValue("partner"); a.Partner.ID == "" {
		a.Partner.ID = id
	} else if a.Partner.ID != id {
		h.writeError(w, r, entente.Errorf(entente.EINVALID, "partner.id: the body names %q but the URL %q", a.Partner.ID, id))
		return a, false
	}
	return a, true
}

func (h *handler) putAgreement(w http.ResponseWriter, r *http.Request) {
	a, ok := h.agreementBody(w, r)
	if !ok {
		return
	}
	a, err := h.svc.PutAgreement(r.Context(), principal(r), a)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, a)
}

func (h *handler) getAgreement(w http.ResponseWriter, r *http.Request) {
	a, err := h.svc.Agreement(r.Context(), principal(r), r.PathValue("partner"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, a)
}

func (h *handler) deleteAgreement(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteAgreement(r.Context(), principal(r), r.PathValue("partner")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// previewAgreement serves GET /api/v1/agreements/{partner}/preview: what
// the partner would receive now and why, one page at a time
// (?limit=1..10000, default 1000; ?next= the cursor of the page before),
// or with ?summary=true the counts per rule, type and TLP over everything.
func (h *handler) previewAgreement(w http.ResponseWriter, r *http.Request) {
	req, err := previewRequest(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page, err := h.svc.PreviewAgreement(r.Context(), principal(r), r.PathValue("partner"), req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, previewAnswer(r.PathValue("partner"), page))
}

// previewProposedAgreement serves POST
// /api/v1/agreements/{partner}/preview: what the agreement in the body,
// not saved, would release (as GET's preview answers, with the same
// query), and "changes": the objects it would release that the
// agreement on record withholds, and the reverse (of a summary, the
// first 200, and summary.changed counts them all; "current" is then the
// summary of the agreement on record, counted in the same pass).
func (h *handler) previewProposedAgreement(w http.ResponseWriter, r *http.Request) {
	req, err := previewRequest(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	a, ok := h.agreementBody(w, r)
	if !ok {
		return
	}
	page, err := h.svc.PreviewProposedAgreement(r.Context(), principal(r), a, req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := previewAnswer(r.PathValue("partner"), page)
	ch := page.Changes
	if ch == nil {
		ch = []egress.PreviewChange{}
	}
	out["changes"] = ch
	if page.Current != nil {
		out["current"] = page.Current
	}
	h.writeAPI(w, r, http.StatusOK, out)
}

// previewRequest reads a preview's query: ?limit=1..10000 (default
// 1000), ?next= the cursor of the page before, ?summary=true.
func previewRequest(r *http.Request) (node.PreviewRequest, error) {
	v := r.URL.Query()
	var req node.PreviewRequest
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return req, entente.Errorf(entente.EINVALID, "limit: %q is not a number from 1 to 10000", s)
		}
		req.Limit = n
	}
	req.Next = v.Get("next")
	if s := v.Get("summary"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return req, entente.Errorf(entente.EINVALID, "summary: %q is not true or false", s)
		}
		req.Summary = b
	}
	return req, nil
}

// previewAnswer is the body of a preview's answer.
func previewAnswer(partner string, page *node.PreviewPage) map[string]any {
	out := map[string]any{"partner": partner}
	if page.Summary != nil {
		out["summary"] = page.Summary
	} else {
		ex := page.Explanations
		if ex == nil {
			ex = []policy.Explanation{}
		}
		out["objects"] = ex
		if page.Next != "" {
			out["next"] = page.Next
		}
	}
	return out
}

// queryAudit serves GET /api/v1/audit?partner=&object=&action=&from=&to=&limit=&next=
// (from and to are RFC 3339 times).
func (h *handler) queryAudit(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := node.AuditQuery{Partner: v.Get("partner"), ObjectID: v.Get("object"), Action: v.Get("action"), Next: v.Get("next")}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(f.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				h.writeError(w, r, entente.Errorf(entente.EINVALID, "%s: %q is not an RFC 3339 time", f.name, s))
				return
			}
			*f.dst = t
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "limit: %q is not a positive integer", s))
			return
		}
		q.Limit = n
	}
	page, err := h.svc.QueryAudit(r.Context(), principal(r), q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if page.Records == nil {
		page.Records = []node.AuditRecord{}
	}
	h.writeAPI(w, r, http.StatusOK, page)
}

func (h *handler) listPeers(w http.ResponseWriter, r *http.Request) {
	ps, err := h.svc.Peers(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if ps == nil {
		ps = []node.Peer{}
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"peers": ps})
}

func (h *handler) addPeer(w http.ResponseWriter, r *http.Request) {
	check := true
	if v := r.URL.Query().Get("check"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "check: %q is not true or false", v))
			return
		}
		check = b
	}
	var p node.Peer
	if err := h.decodeAPIBody(w, r, &p); err != nil {
		h.writeError(w, r, err)
		return
	}
	// Only an admin may add a peer: no one else makes the node call an
	// address of their choosing.
	if check && principal(r).Role == entente.RoleAdmin {
		if err := CheckPeer(r.Context(), p); err != nil {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "%v; to add it anyway: ?check=false (entente peer add --no-check)", err))
			return
		}
	}
	p, err := h.svc.AddPeer(r.Context(), principal(r), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusCreated, p)
}

// CheckPeer checks, before a peer is added, that its address answers as a
// TAXII 2.1 server and that the key it issued may use its collection as
// the peer's direction needs (see taxiiclient.Client.Check). A peer whose
// API root is not an http(s) URL is not checked: the node refuses it.
func CheckPeer(ctx context.Context, p node.Peer) error {
	u, err := url.Parse(p.APIRoot)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || p.Collection == "" {
		return nil
	}
	hc, err := taxiiclient.HTTPFor(nil, p.Pin, nil)
	if err != nil {
		return nil // the node refuses the malformed pin, naming the field
	}
	c := &taxiiclient.Client{DiscoveryURL: p.DiscoveryURL, APIRoot: p.APIRoot, HTTP: hc, Auth: taxiiclient.Auth{Token: p.Token}, UserAgent: "entente"}
	dir := p.Direction
	if dir == "" {
		dir = node.DirectionPull
	}
	_, err = c.Check(ctx, p.Collection, dir != node.DirectionPush, dir != node.DirectionPull)
	if err != nil {
		return fmt.Errorf("peer check: %w", err)
	}
	return nil
}

func (h *handler) removePeer(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.RemovePeer(r.Context(), principal(r), r.PathValue("id")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) syncPeer(w http.ResponseWriter, r *http.Request) {
	res, err := h.svc.SyncPeer(r.Context(), principal(r), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, res)
}
