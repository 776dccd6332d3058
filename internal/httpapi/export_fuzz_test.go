package httpapi

import (
	"net/url"
	"testing"
)

// FuzzParseExportQuery checks that any query string gives a request or a
// client error, never a panic, and that accepted numbers are in range.
func FuzzParseExportQuery(f *testing.F) {
	for _, s := range []string{"type=ipv4,domain&tlp=amber&min-confidence=50&max-age=7d", "country=NL,de&include-warninglisted=true",
		"max-age=-3h", "min-confidence=101", "type=bogus", "tlp=purple", "no-aggregate=1&name=x&zone=y.rpz", "max-age=99999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		req, err := ParseExportQuery("plain", q)
		if err != nil {
			return
		}
		if req.Filter.MinConfidence < 0 || req.Filter.MinConfidence > 100 || req.Filter.MaxAge < 0 {
			t.Fatalf("accepted out-of-range filter %+v from %q", req.Filter, s)
		}
	})
}
