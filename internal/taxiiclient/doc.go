// Package taxiiclient is the TAXII 2.1 client by which an Entente node
// pulls objects from its peers and pushes objects to them. It speaks the
// OASIS TAXII 2.1 specification only, so it works against any conformant
// server (another Entente node, a MISP or OpenCTI TAXII endpoint, a
// medallion server), and it is defensive: every peer is untrusted input.
//
// # Use
//
//	c := &taxiiclient.Client{
//		APIRoot: "https://peer.example/api1/", // the API root URL
//		Auth:    taxiiclient.Auth{Token: key},
//	}
//	cp, err := c.Pull(ctx, collectionID, saved, func(p *taxiiclient.Page) error {
//		if err := store(p.Objects); err != nil { // dedup by id + modified
//			return err
//		}
//		return saveCheckpoint(p.Checkpoint) // resume point after this page
//	})
//
// # Pulling
//
// [Client.Pull] pages through a collection's objects endpoint. Its
// [Checkpoint] records the added_after filter of the current paging run,
// the server's next token and the last X-TAXII-Date-Added-Last header
// seen, each exactly as the server wrote it. The callback receives each
// page with the checkpoint to persist once the page is stored; after a
// crash, pulling again from the saved checkpoint resumes where it stopped.
// A page may then be delivered twice, which is harmless because objects
// are stored by id and version. Servers that page with next tokens and
// servers that page only with added_after (more: true without next) are
// both followed. A next token the server no longer accepts (400 or 404
// when resuming) is dropped and the pull resumes from the last
// date_added seen.
//
// [Page.ReceivedAt], with the peer the caller pulled from, is the
// provenance to record for each object (which peer, when): the policy
// gate's re-sharing rule depends on it.
//
// Each object of a page is checked with [stix.Decode] and
// [stix.Validate]; invalid objects are left out of [Page.Objects] and
// reported in [Page.Invalid] with their index, id and reason; they do not
// fail the page.
//
// # Pushing
//
// [Client.Push] POSTs envelopes to a collection, split so that no request
// exceeds the API root's max_content_length, then polls each status
// resource until it is complete or [Limits.StatusTimeout] passes, and
// returns the combined [Status].
//
// # Misbehaving peers
//
// Every failure is an error naming the URL and what was wrong, wrapping
// one of the sentinel errors so callers can record and classify it:
// [ErrMediaType] (an HTML page or any other media type than
// application/taxii+json;version=2.1), [ErrBadEnvelope] (a body that is
// not a TAXII envelope), [ErrEndlessPaging] (more: true with the same next
// token, with no new objects, or beyond [Limits.MaxPages]), [ErrSlow]
// (a body trickling in below [Limits.MinBytesPerSecond], or no response
// headers within [Limits.HeaderTimeout]), [ErrTooLarge],
// [ErrHTTPStatus]. Requests are retried with exponential back-off and full
// jitter on network errors and 5xx responses, and 429 and 503 responses
// are retried after their Retry-After (seconds or an HTTP date), up to
// [Limits.MaxRetries] times and never waiting longer than
// [Limits.MaxRetryAfter]. A Client holds no state between calls other than
// the cached API root information, so one Client per peer may be used
// from several goroutines, and one peer's failure never affects another's.
package taxiiclient
