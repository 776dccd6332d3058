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
//
// # Device watch
//
// devices.go serves the node's device watch (docs/devices.md): sensors
// post network logs to POST /api/v1/devices/events (sensor and admin
// keys, at most MaxDeviceEventsBody, charged to the body budget), whose
// findings become sightings; analysts and admins list the devices (GET
// /api/v1/devices[?class=], GET /api/v1/devices/{device}); the node's own
// keys get a device class's country policy from GET
// /export/{nftables,plain,rpz}?class=NAME, through the gate like every
// export, and its explanation from GET /api/v1/explain?class=NAME&value=V.
// Partners are refused all of them.
// Each key has a token bucket (Options.RatePerSecond, Options.Burst);
// beyond it requests get 429 with Retry-After. Bodies are limited in size
// (413) and JSON nesting depth (400). Logs name the key by its public id,
// never the key.
//
// # Limits
//
// The bodies of Add Objects and sightings are charged to a memory budget
// from before they are read until their objects are stored (twice their
// size plus 1 KiB per object): past Options.BodyMemoryPerKey for the key
// a request gets 429, past Options.BodyMemoryTotal for the node 503, both
// with Retry-After; a request alone is always admitted. The memory
// charged is the gauge entente_http_body_memory_bytes. A body over its
// limit, or refused before it is read, is drained (up to twice the limit,
// for at most 30 s) before the answer, so that clients that send their
// whole body before reading (Python's urllib and requests) read the error
// rather than a reset connection. A request line and headers over
// Options.MaxHeaderBytes (64 KiB) get 431; a path that is not in its
// canonical form (empty, "." or ".." segments) gets 400; every route
// declares the query parameters it takes, and an unknown parameter, a
// malformed value or a single-valued parameter given twice gets 400
// naming the parameter (TAXII routes ignore the TAXII filters they do not
// take). Every 4xx on these routes is a TAXII error message; the only
// exceptions are what net/http answers before the handler runs (a
// malformed request line, or one and its headers over
// ServerMaxHeaderBytes, 1 MiB), which it writes in plain text.
//
// # TAXII specifics
//
// Errors are TAXII error messages (application/taxii+json;version=2.1)
// on every route under /taxii2/, including 404 and 405 from routing.
// Accept must allow application/taxii+json (version 2.1 or none); */*
// and a missing Accept are taken to allow it, as HTTP says; anything
// else gets 406. POST bodies must be application/taxii+json (version
// 2.1 or none), else 415. Add Objects answers 202 with a status resource
// that is "pending" until the objects are validated and durable, then
// "complete"; an indicator whose STIX pattern does not parse is a failure
// naming the column and the reason. Pages hold 1,000 entries
// unless limit asks otherwise (at most 10,000); manifest and versions
// responses carry a next token besides more, as envelopes do. A TAXII URL
// given without its trailing slash is redirected to it (with a JSON
// body). Collections are addressed by id or alias.
package httpapi
