package entente

import (
	"encoding/json"
	"time"
)

// Peer is another TAXII 2.1 server the node pulls objects from or pushes
// objects to.
type Peer struct {
	// ID identifies the peer on this node.
	ID string `json:"id"`
	// Name is the peer's name, for people.
	Name string `json:"name"`
	// Org is the STIX identity id of the organisation that runs the peer:
	// the origin recorded for objects pulled from it and the partner whose
	// agreement gates what is pushed to it.
	Org string `json:"org,omitempty"`
	// DiscoveryURL is the peer's TAXII discovery URL (informative).
	DiscoveryURL string `json:"discovery_url,omitempty"`
	// APIRoot is the URL of the peer's API root.
	APIRoot string `json:"api_root"`
	// Collection is the id of the peer's collection.
	Collection string `json:"collection"`
	// LocalCollection is the id or alias of this node's collection that
	// pulled objects go into and pushed objects come from.
	LocalCollection string `json:"local_collection"`
	// Token is the credential the peer issued to this node. It is a secret
	// of the peer: stored as given, never logged or shown.
	Token string `json:"token,omitempty"`
	// Pin, when set, is the fingerprint of the public key the peer's TLS
	// server must present ("SHA256:" and the unpadded base64 of the
	// SHA-256 of its SubjectPublicKeyInfo, as 'entente init' prints it):
	// the node then trusts that key alone, whoever signed its
	// certificate, and refuses, audits and reports a peer that presents
	// another. Empty: the peer's certificate is verified against the
	// system's roots, as any HTTPS server's.
	Pin string `json:"pin,omitempty"`
	// Direction is "pull", "push" or "both".
	Direction string `json:"direction"`
	// Created is when the peer was added.
	Created time.Time `json:"created"`
	// Checkpoint is where the next sync resumes: the pull's and the
	// push's, as JSON (nil before the first sync).
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
	// LastSync is when the last sync attempt ended (zero if never).
	LastSync time.Time `json:"last_sync,omitzero"`
	// LastError is the error of the last sync attempt ("" on success).
	LastError string `json:"last_error,omitempty"`
}

// Peer directions.
const (
	DirectionPull = "pull"
	DirectionPush = "push"
	DirectionBoth = "both"
)
