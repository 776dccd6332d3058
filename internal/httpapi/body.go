package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/entente-cti/entente"
)

// bufs recycles request body buffers: a body is only needed until the
// request's objects are stored.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads r's whole body, at most limit bytes, into a pooled
// buffer that the caller must give back with putBuf once nothing refers
// to the bytes. A body over the limit is ETOOLARGE (whether announced by
// Content-Length or found while reading); a body that cannot be read to
// its end (the client went away mid-upload) is EINVALID. Either way
// nothing of it is used.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, error) {
	tooLarge := entente.Errorf(entente.ETOOLARGE, "the request body is larger than the limit of %d bytes", limit)
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		putBuf(buf)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, &entente.Error{Code: entente.EINVALID, Message: "the request body could not be read to its end", Err: err}
	}
	return buf, nil
}

// putBuf gives a body buffer back to the pool, unless it grew very large.
func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 8<<20 {
		bufs.Put(b)
	}
}

// discard reads what is left of a refused body, up to a bound, so that
// the connection can be reused.
func discard(r *http.Request) {
	io.CopyN(io.Discard, r.Body, 64<<10)
}
