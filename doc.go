// Package entente holds the vocabulary shared by every part of an Entente node:
// the application error type and its codes, roles and principals, TAXII
// collections, and the queries and pages by which objects are read.
//
// It performs no I/O. Domain packages (internal/stix, internal/policy, …)
// and adapters (internal/store/sqlite, internal/httpapi, …) speak to each
// other in these terms; only cmd/entente wires them together.
package entente
