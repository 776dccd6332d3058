package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/taxii"
)

// statusOf maps application error codes to HTTP status codes.
var statusOf = map[entente.Code]int{
	entente.EINVALID:       http.StatusBadRequest,
	entente.ENOTFOUND:      http.StatusNotFound,
	entente.ECONFLICT:      http.StatusConflict,
	entente.EUNAUTHORIZED:  http.StatusUnauthorized,
	entente.EFORBIDDEN:     http.StatusForbidden,
	entente.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	entente.EUNSUPPORTED:   http.StatusUnsupportedMediaType,
	entente.ENOTACCEPTABLE: http.StatusNotAcceptable,
	entente.ERATELIMIT:     http.StatusTooManyRequests,
	entente.EUNAVAILABLE:   http.StatusServiceUnavailable,
	entente.EINTERNAL:      http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status code for err.
func HTTPStatus(err error) int {
	if s, ok := statusOf[entente.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// challenge is the WWW-Authenticate value of every 401.
var challenge = []string{`Bearer realm="entente"`, `Basic realm="entente", charset="UTF-8"`}

// writeError writes err as a TAXII error message. Internal errors are
// logged with their detail and shown to the client as "internal error".
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := HTTPStatus(err)
	code := entente.ErrorCode(err)
	if code == entente.EINTERNAL {
		h.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var e *entente.Error
	if errors.As(err, &e) && e.Err != nil && code != entente.EINTERNAL {
		h.log.DebugContext(r.Context(), "request refused", "path", r.URL.Path, "err", err)
	}
	if ref, ok := errors.AsType[*refusal](err); ok {
		w.Header().Set("Retry-After", strconvSeconds(ref.retry))
	}
	writeErrorBody(w, status, entente.ErrorMessage(err), string(code))
}

// writeErrorBody writes a TAXII error message with the given status.
func writeErrorBody(w http.ResponseWriter, status int, description, code string) {
	hd := w.Header()
	if status == http.StatusUnauthorized {
		hd["Www-Authenticate"] = challenge
	}
	body, _ := json.Marshal(taxii.NewError(status, http.StatusText(status), description, code))
	hd.Set("Content-Type", taxii.MediaType)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

// writeJSON writes v as JSON with the given media type and status.
func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, mediaType string, v any) {
	if st, ok := v.(*entente.Status); ok && st != nil {
		// Every POST and every poll of its status: without reflection,
		// into a buffer used again once written.
		bp := statusBuffers.Get().(*[]byte)
		b := st.AppendJSON((*bp)[:0])
		writeBody(w, status, mediaType, b)
		if cap(b) <= maxPooledStatus {
			*bp = b
			statusBuffers.Put(bp)
		}
		return
	}
	body, err := json.Marshal(v)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeBody(w, status, mediaType, body)
}

// statusBuffers hold the buffers statuses are encoded into (about 10 KiB
// for an envelope of 100 objects); one larger than maxPooledStatus is left
// to the collector.
var statusBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledStatus = 256 << 10

// writeBody writes body as the response; body is not used once it returns.
func writeBody(w http.ResponseWriter, status int, mediaType string, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", mediaType)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}
