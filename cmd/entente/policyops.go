package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"time"

	"github.com/entente-cti/entente/internal/httpapi"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
)

// policyOps are the sharing-policy and federation operations of the
// partner, agreement, audit and peer commands: on a running node through
// its API, or offline on its data.
type policyOps interface {
	putPartner(context.Context, policy.Party) error
	partners(context.Context) ([]policy.Party, error)
	removePartner(context.Context, string) error
	putAgreement(context.Context, policy.Agreement) (policy.Agreement, error)
	agreement(context.Context, string) (policy.Agreement, error)
	agreements(context.Context) ([]policy.Agreement, error)
	deleteAgreement(context.Context, string) error
	preview(context.Context, string, node.PreviewRequest) (*node.PreviewPage, error)
	// previewProposed summarises what a changed agreement would release,
	// without recording it.
	previewProposed(context.Context, policy.Agreement) (*node.PreviewPage, error)
	audit(context.Context, node.AuditQuery) (node.AuditPage, error)
	// addPeer adds a peer, first checking that it answers (see
	// httpapi.CheckPeer) when check is set.
	addPeer(ctx context.Context, p node.Peer, check bool) (node.Peer, error)
	peers(context.Context) ([]node.Peer, error)
	removePeer(context.Context, string) error
	syncPeer(context.Context, string) (node.SyncResult, error)
	quarantine(ctx context.Context, id, reason string) (policy.Party, error)
	release(ctx context.Context, id string) (policy.Party, error)
	trust(ctx context.Context, id string, t httpapi.TrustRequest) (policy.Party, error)
}

// backendFlags are the flags that choose where a policy command works.
type backendFlags struct {
	remote remoteFlags
	cfg    config.Config
}

func (b *backendFlags) register(fs *flag.FlagSet, env *Env) {
	b.remote.register(fs, env)
	b.cfg = config.Default()
	fs.StringVar(&b.cfg.Data, "data", "", "data directory of a node, to work offline")
	fs.StringVar(&b.cfg.Store, "store", "", "PostgreSQL URL of a node's store, to work offline")
}

// open returns the operations and a function that releases them.
func (b *backendFlags) open(ctx context.Context, env *Env) (policyOps, func(), error) {
	if b.cfg.Data != "" || b.cfg.Store != "" {
		svc, st, err := openNode(ctx, b.cfg, quietLogger(env))
		if err != nil {
			return nil, nil, err
		}
		id, err := svc.Identity(ctx)
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return &offlinePolicy{svc: svc, admin: node.LocalAdmin(id.ID)}, func() { st.Close() }, nil
	}
	if b.remote.server == "" {
		return nil, nil, usagef("give --server URL (or ENTENTE_SERVER) for a running node, or --data DIR to work offline")
	}
	c, err := newAPIClient(b.remote)
	if err != nil {
		return nil, nil, err
	}
	return &remotePolicy{c: c}, func() {}, nil
}

// offlinePolicy works on a node's data directly, as its local admin.
type offlinePolicy struct {
	svc   *node.Service
	admin entente.Principal
}

func (o *offlinePolicy) p() entente.Principal { return o.admin }

func (o *offlinePolicy) putPartner(ctx context.Context, p policy.Party) error {
	return o.svc.PutPartner(ctx, o.p(), p)
}
func (o *offlinePolicy) partners(ctx context.Context) ([]policy.Party, error) {
	return o.svc.Partners(ctx, o.p())
}
func (o *offlinePolicy) removePartner(ctx context.Context, id string) error {
	return o.svc.RemovePartner(ctx, o.p(), id)
}
func (o *offlinePolicy) putAgreement(ctx context.Context, a policy.Agreement) (policy.Agreement, error) {
	return o.svc.PutAgreement(ctx, o.p(), a)
}
func (o *offlinePolicy) agreement(ctx context.Context, partner string) (policy.Agreement, error) {
	return o.svc.Agreement(ctx, o.p(), partner)
}
func (o *offlinePolicy) agreements(ctx context.Context) ([]policy.Agreement, error) {
	return o.svc.Agreements(ctx, o.p())
}
func (o *offlinePolicy) deleteAgreement(ctx context.Context, partner string) error {
	return o.svc.DeleteAgreement(ctx, o.p(), partner)
}
func (o *offlinePolicy) preview(ctx context.Context, partner string, req node.PreviewRequest) (*node.PreviewPage, error) {
	return o.svc.PreviewAgreement(ctx, o.p(), partner, req)
}
func (o *offlinePolicy) previewProposed(ctx context.Context, a policy.Agreement) (*node.PreviewPage, error) {
	return o.svc.PreviewProposedAgreement(ctx, o.p(), a, node.PreviewRequest{Summary: true})
}
func (o *offlinePolicy) audit(ctx context.Context, q node.AuditQuery) (node.AuditPage, error) {
	return o.svc.QueryAudit(ctx, o.p(), q)
}
func (o *offlinePolicy) addPeer(ctx context.Context, p node.Peer, check bool) (node.Peer, error) {
	if check {
		if err := httpapi.CheckPeer(ctx, p); err != nil {
			return node.Peer{}, fmt.Errorf("%w (add it anyway with --no-check)", err)
		}
	}
	return o.svc.AddPeer(ctx, o.p(), p)
}
func (o *offlinePolicy) peers(ctx context.Context) ([]node.Peer, error) {
	return o.svc.Peers(ctx, o.p())
}
func (o *offlinePolicy) removePeer(ctx context.Context, id string) error {
	return o.svc.RemovePeer(ctx, o.p(), id)
}
func (o *offlinePolicy) syncPeer(ctx context.Context, id string) (node.SyncResult, error) {
	return o.svc.SyncPeer(ctx, o.p(), id)
}

func (o *offlinePolicy) quarantine(ctx context.Context, id, reason string) (policy.Party, error) {
	return o.svc.QuarantinePartner(ctx, o.p(), id, reason)
}
func (o *offlinePolicy) release(ctx context.Context, id string) (policy.Party, error) {
	return o.svc.ReleasePartner(ctx, o.p(), id)
}
func (o *offlinePolicy) trust(ctx context.Context, id string, t httpapi.TrustRequest) (policy.Party, error) {
	return o.svc.SetPartnerTrust(ctx, o.p(), id, t.Weight, t.Quota)
}

// remotePolicy works through a running node's API.
type remotePolicy struct{ c *apiClient }

func (r *remotePolicy) putPartner(ctx context.Context, p policy.Party) error {
	return r.c.do(ctx, "PUT", "/api/v1/partners/"+url.PathEscape(p.ID), p, nil)
}
func (r *remotePolicy) partners(ctx context.Context) ([]policy.Party, error) {
	var out struct {
		Partners []policy.Party `json:"partners"`
	}
	err := r.c.do(ctx, "GET", "/api/v1/partners", nil, &out)
	return out.Partners, err
}
func (r *remotePolicy) removePartner(ctx context.Context, id string) error {
	return r.c.do(ctx, "DELETE", "/api/v1/partners/"+url.PathEscape(id), nil, nil)
}
func (r *remotePolicy) putAgreement(ctx context.Context, a policy.Agreement) (policy.Agreement, error) {
	var out policy.Agreement
	err := r.c.do(ctx, "PUT", "/api/v1/agreements/"+url.PathEscape(a.Partner.ID), a, &out)
	return out, err
}
func (r *remotePolicy) agreement(ctx context.Context, partner string) (policy.Agreement, error) {
	var out policy.Agreement
	err := r.c.do(ctx, "GET", "/api/v1/agreements/"+url.PathEscape(partner), nil, &out)
	return out, err
}
func (r *remotePolicy) agreements(ctx context.Context) ([]policy.Agreement, error) {
	var out struct {
		Agreements []policy.Agreement `json:"agreements"`
	}
	err := r.c.do(ctx, "GET", "/api/v1/agreements", nil, &out)
	return out.Agreements, err
}
func (r *remotePolicy) deleteAgreement(ctx context.Context, partner string) error {
	return r.c.do(ctx, "DELETE", "/api/v1/agreements/"+url.PathEscape(partner), nil, nil)
}
func (r *remotePolicy) preview(ctx context.Context, partner string, req node.PreviewRequest) (*node.PreviewPage, error) {
	v := url.Values{}
	if req.Summary {
		v.Set("summary", "true")
	}
	if req.Limit > 0 {
		v.Set("limit", fmt.Sprint(req.Limit))
	}
	if req.Next != "" {
		v.Set("next", req.Next)
	}
	var out struct {
		Objects []policy.Explanation `json:"objects"`
		Next    string               `json:"next"`
		Summary *node.PreviewSummary `json:"summary"`
	}
	err := r.c.do(ctx, "GET", "/api/v1/agreements/"+url.PathEscape(partner)+"/preview?"+v.Encode(), nil, &out)
	return &node.PreviewPage{Explanations: out.Objects, Next: out.Next, Summary: out.Summary}, err
}
func (r *remotePolicy) previewProposed(ctx context.Context, a policy.Agreement) (*node.PreviewPage, error) {
	var out struct {
		Summary *node.PreviewSummary `json:"summary"`
		Current *node.PreviewSummary `json:"current"`
		Changes []node.PreviewChange `json:"changes"`
	}
	err := r.c.do(ctx, "POST", "/api/v1/agreements/"+url.PathEscape(a.Partner.ID)+"/preview?summary=true", a, &out)
	return &node.PreviewPage{Summary: out.Summary, Current: out.Current, Changes: out.Changes}, err
}
func (r *remotePolicy) audit(ctx context.Context, q node.AuditQuery) (node.AuditPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"partner": q.Partner, "object": q.ObjectID, "action": q.Action, "next": q.Next} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
	}
	var out node.AuditPage
	err := r.c.do(ctx, "GET", "/api/v1/audit?"+v.Encode(), nil, &out)
	return out, err
}
func (r *remotePolicy) addPeer(ctx context.Context, p node.Peer, check bool) (node.Peer, error) {
	// The node checks the peer, from where it will reach it.
	path := "/api/v1/peers"
	if !check {
		path += "?check=false"
	}
	var out node.Peer
	err := r.c.do(ctx, "POST", path, p, &out)
	return out, err
}
func (r *remotePolicy) peers(ctx context.Context) ([]node.Peer, error) {
	var out struct {
		Peers []node.Peer `json:"peers"`
	}
	err := r.c.do(ctx, "GET", "/api/v1/peers", nil, &out)
	return out.Peers, err
}
func (r *remotePolicy) removePeer(ctx context.Context, id string) error {
	return r.c.do(ctx, "DELETE", "/api/v1/peers/"+url.PathEscape(id), nil, nil)
}
func (r *remotePolicy) syncPeer(ctx context.Context, id string) (node.SyncResult, error) {
	var out node.SyncResult
	err := r.c.do(ctx, "POST", "/api/v1/peers/"+url.PathEscape(id)+"/sync", nil, &out)
	return out, err
}

func (r *remotePolicy) quarantine(ctx context.Context, id, reason string) (policy.Party, error) {
	var out policy.Party
	err := r.c.do(ctx, "POST", "/api/v1/partners/"+url.PathEscape(id)+"/quarantine", httpapi.QuarantineRequest{Reason: reason}, &out)
	return out, err
}
func (r *remotePolicy) release(ctx context.Context, id string) (policy.Party, error) {
	var out policy.Party
	err := r.c.do(ctx, "POST", "/api/v1/partners/"+url.PathEscape(id)+"/release", nil, &out)
	return out, err
}
func (r *remotePolicy) trust(ctx context.Context, id string, t httpapi.TrustRequest) (policy.Party, error) {
	var out policy.Party
	err := r.c.do(ctx, "PUT", "/api/v1/partners/"+url.PathEscape(id)+"/trust", t, &out)
	return out, err
}
