// Package httpapi is the HTTP adapter of an Entente node: the TAXII 2.1
// server under /taxii2/, the node API under /api/v1/, and the operational
// endpoints /healthz, /readyz and /metrics. It holds no state of its own
// beyond rate-limit buckets and metrics: every request is served by the
// node service (internal/node), which authorises it and is the only
// holder of the store.
//
// # Constructing and starting the server (for cmd/entente serve)
//
//	st, err := sqlite.Open(ctx, cfg.Data)            // or the PostgreSQL store
//	svc := node.New(st, node.Config{
//		Title: cfg.Title, Description: cfg.Description, Contact: cfg.Contact,
//		APIRoot: cfg.APIRoot, MaxContentLength: cfg.MaxContentLength, Org: org,
//	}, logger)
//	reg := prometheus.NewRegistry()                   // a Gatherer too: /metrics serves it
//	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
//	h := httpapi.New(svc, httpapi.Options{
//		MaxJSONDepth: cfg.MaxJSONDepth, RatePerSecond: cfg.RatePerSecond, Burst: cfg.Burst,
//	}, logger, reg)
//	srv := httpapi.NewServer(cfg.Listen, h)           // http.Server with sane timeouts
//	go func() { <-ctx.Done(); srv.Shutdown(context.WithTimeout(…, cfg.ShutdownGrace)) }()
//	err = srv.ListenAndServe()                        // or ListenAndServeTLS; ErrServerClosed on shutdown
//
// The TAXII POST body limit is the node's MaxContentLength, the value the
// API root advertises; Options.MaxBodyBytes limits node API bodies.
//
// # Security
//
// Every route but /healthz and /readyz requires an API key, as
// "Authorization: Bearer KEY" or as the password of HTTP Basic (the user
// name is ignored). A request without a valid key gets 401 with
// WWW-Authenticate challenges for both schemes, whatever the path; a key
// whose role or collection permissions do not allow the request gets 403.
// /metrics and the node API (except /api/v1/whoami) are for admins; the
// audit log (/api/v1/audit) is also open to analysts.
//
// # Sharing policy and federation
//
// Partners (/api/v1/partners, PUT /api/v1/partners/{id}), agreements
// (/api/v1/agreements, PUT|GET|DELETE /api/v1/agreements/{partner}, and
// GET /api/v1/agreements/{partner}/preview: what the partner would
// receive, with the rule for each object), the audit log (GET
// /api/v1/audit?partner=&object=&action=&from=&to=&limit=&next=) and peers
// (GET|POST /api/v1/peers, DELETE /api/v1/peers/{id}, POST
// /api/v1/peers/{id}/sync) are served by policy.go. What a partner's key
// reads over TAXII passes the node's policy gate and is audited there.
// Each key has a token bucket (Options.RatePerSecond, Options.Burst);
// beyond it requests get 429 with Retry-After. Bodies are limited in size
// (413) and JSON nesting depth (400). Logs name the key by its public id,
// never the key.
//
// # TAXII specifics
//
// Errors are TAXII error messages (application/taxii+json;version=2.1)
// on every route under /taxii2/, including 404 and 405 from routing.
// Accept must allow application/taxii+json (version 2.1 or none); */*
// and a missing Accept are taken to allow it, as HTTP says; anything
// else gets 406. POST bodies must be application/taxii+json (version
// 2.1 or none), else 415. Add Objects is synchronous: it answers 202 with
// a status resource whose status is "complete". Pages hold 1,000 entries
// unless limit asks otherwise (at most 10,000); manifest and versions
// responses carry a next token besides more, as envelopes do. A TAXII URL
// given without its trailing slash is redirected to it. Collections are
// addressed by id or alias.
package httpapi
