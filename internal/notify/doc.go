// Package notify delivers alerts out of the node: webhooks signed with the
// node's Ed25519 key and retried with exponential back-off from a durable
// queue that survives a restart, and syslog messages in the RFC 5424
// format over UDP, TCP or a Unix socket.
//
// Notify decides nothing about what may leave the node: it delivers the
// bytes it is given. The node passes every payload through the policy gate
// before it enqueues it, so nothing is delivered beyond what the gate
// allows.
//
// # Webhook signatures
//
// Each request carries two headers:
//
//	X-Entente-Timestamp: 1763640000
//	X-Entente-Signature: ed25519=<base64 of the signature>
//
// The signature is Ed25519 over the timestamp (decimal Unix seconds), a
// full stop, and the request body. A receiver checks it with [Verify]
// (signature and clock tolerance) or a [Verifier] (which also refuses a
// signature it has already seen within the tolerance: a replay).
package notify
