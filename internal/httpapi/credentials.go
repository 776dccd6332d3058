package httpapi

import (
	"net/http"
	"strings"
)

// keyFromRequest returns the key presented by r: the token of an
// "Authorization: Bearer" header, or the password of HTTP Basic (for TAXII
// clients that speak only Basic; the user name is ignored). ok is false
// when the request carries no credentials.
func keyFromRequest(r *http.Request) (key string, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	if scheme, tok, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	if _, pass, found := r.BasicAuth(); found {
		return pass, pass != ""
	}
	return "", false
}
