package httpapi

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/entente-cti/entente"
)

// bodyChunk is the size of the pieces in which a body of unknown length
// (chunked) is read before it is copied, once, to memory of its exact
// size.
const bodyChunk = 256 << 10

// drainTimeout bounds the time spent reading and discarding what is left
// of a refused body.
const drainTimeout = 30 * time.Second

// readBody reads r's whole body, at most limit bytes, into memory of its
// own, of exactly its size (the caller may keep slices of it as long as
// it likes). charge, when not nil, is called as a body of unknown length
// is read with the size of each piece; an error it returns refuses the
// body. A body over the limit (announced by Content-Length or found while
// reading) is ETOOLARGE; a body that cannot be read to its end (the
// client went away mid-upload) is EINVALID. Either way nothing of it is
// used, and what is left of a refused body is drained (see drain) so
// that a client that sends its whole body before it reads the answer
// reads the answer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, charge func(int64) error) ([]byte, error) {
	tooLarge := entente.Errorf(entente.ETOOLARGE, "the request body is larger than the limit of %d bytes", limit)
	if r.ContentLength > limit {
		drain(w, r, r.ContentLength, limit)
		return nil, tooLarge
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, unreadable(err)
		}
		return buf, nil
	}
	// Unknown length: pieces, then one copy.
	var pieces [][]byte
	var n int64
	for {
		p := make([]byte, bodyChunk)
		k, err := io.ReadFull(r.Body, p)
		if k > 0 {
			n += int64(k)
			if n > limit {
				drain(w, r, -1, limit)
				return nil, tooLarge
			}
			if charge != nil {
				if cerr := charge(int64(k)); cerr != nil {
					drain(w, r, -1, limit)
					return nil, cerr
				}
			}
			pieces = append(pieces, p[:k])
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, unreadable(err)
		}
	}
	buf := make([]byte, 0, n)
	for i, p := range pieces {
		buf = append(buf, p...)
		pieces[i] = nil // garbage as soon as copied
	}
	return buf, nil
}

func unreadable(err error) error {
	return &entente.Error{Code: entente.EINVALID, Message: "the request body could not be read to its end", Err: err}
}

// drain reads and discards what is left of r's body, so that a client
// that sends its whole body before it reads the answer (Python's urllib
// and requests, the OASIS TAXII client) reads the error instead of a
// connection reset. It reads at most twice limit (the most a body may
// have) more bytes, and for at most drainTimeout; a body declared
// (length, -1 when unknown) longer than that is not read at all. When the
// body could not be drained to its end the connection is closed after
// the answer.
func drain(w http.ResponseWriter, r *http.Request, length, limit int64) {
	bound := 2 * limit
	if length > bound {
		w.Header().Set("Connection", "close")
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(drainTimeout))
	n, err := io.CopyN(io.Discard, r.Body, bound+1)
	_ = rc.SetReadDeadline(time.Time{})
	if !errors.Is(err, io.EOF) || n > bound {
		w.Header().Set("Connection", "close")
	}
}

// refuseBody drains the body of a request refused before its body was
// read (a wrong media type, a forbidden collection, no memory for it),
// within the bounds of drain for a body of at most limit bytes.
func refuseBody(w http.ResponseWriter, r *http.Request, limit int64) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	drain(w, r, r.ContentLength, limit)
}
