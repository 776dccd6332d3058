package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/blind/blindhttp"
	"github.com/entente-cti/entente/internal/node"
)

// BlindPath is where blind access (internal/blind) is served: partners'
// keys only, each request authorised by the agreement's blind grant and
// budget (see package blindhttp for the routes).
const BlindPath = "/api/v1/blind"

// blindRoutes mounts blind access: each route of blindhttp under
// BlindPath, so that the adapter's limits and query checks apply to each.
func (h *handler) blindRoutes() {
	bh := http.StripPrefix(BlindPath, blindhttp.Handler(blindService{h.svc}, h.blindGrant, h.log))
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A batch is small (1,024 elements of 44 base64 characters);
		// the node API's body limit applies too.
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
		bh.ServeHTTP(w, r)
	})
	for _, route := range []string{"GET /epoch", "GET /set", "POST /evaluate", "POST /resolve"} {
		method, path, _ := strings.Cut(route, " ")
		pattern := method + " " + BlindPath + path
		h.route().Handle(pattern, limited)
		if names := blindhttp.Queries[route]; len(names) > 0 {
			spec := querySpec{}
			for _, n := range names {
				spec.params = append(spec.params, param{name: n, check: wholeNumber})
			}
			h.queries[pattern] = spec
		}
	}
}

// wholeNumber checks a query value that must be a whole number.
func wholeNumber(v string) error {
	if _, err := strconv.ParseUint(v, 10, 64); err != nil {
		return entente.Errorf(entente.EINVALID, "want a whole number, not %q", clip(v))
	}
	return nil
}

// blindGrant authorises a blind-access request: a partner key whose
// agreement grants blind access now, with its budget.
func (h *handler) blindGrant(r *http.Request) (blindhttp.Grant, error) {
	p := principal(r)
	if p.Role != entente.RolePartner {
		return blindhttp.Grant{}, &blind.Error{Reason: blind.ReasonNoAccess, Index: -1,
			Message: "blind access is for partner keys; this key's role is " + strconv.Quote(string(p.Role))}
	}
	budget, err := h.svc.BlindGrant(r.Context(), p)
	if err != nil {
		if entente.ErrorCode(err) == entente.EFORBIDDEN {
			return blindhttp.Grant{}, &blind.Error{Reason: blind.ReasonNoAccess, Index: -1, Message: entente.ErrorMessage(err)}
		}
		return blindhttp.Grant{}, err
	}
	return blindhttp.Grant{Partner: p.Org, Budget: budget, Principal: p}, nil
}

// blindService is the node's blind access as blindhttp serves it. The
// node reads the grant again at each call: the handler's authorisation
// only refuses early.
type blindService struct{ svc *node.Service }

func (b blindService) MaxBatch() int { return b.svc.BlindMaxBatch() }

func (b blindService) Info(ctx context.Context, g blindhttp.Grant) (*blind.EpochInfo, error) {
	return b.svc.BlindInfo(ctx, g.Principal)
}

func (b blindService) Set(ctx context.Context, g blindhttp.Grant, epoch uint64, ifNoneMatch string) (*blind.Published, bool, error) {
	return b.svc.BlindSet(ctx, g.Principal, epoch, ifNoneMatch)
}

func (b blindService) Evaluate(ctx context.Context, g blindhttp.Grant, req *blind.EvalRequest) (*blind.EvalResponse, error) {
	return b.svc.BlindEvaluate(ctx, g.Principal, req)
}

func (b blindService) Resolve(ctx context.Context, g blindhttp.Grant, _ *blind.ResolveRequest, refs []blind.Ref) (*blind.ResolveResponse, error) {
	return b.svc.BlindResolve(ctx, g.Principal, refs)
}
