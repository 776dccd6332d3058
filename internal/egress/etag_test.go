package egress

import (
	"strings"
	"testing"
)

// FuzzETagMatch checks If-None-Match parsing never panics and always
// matches the tag itself.
func FuzzETagMatch(f *testing.F) {
	f.Add(`"abc", W/"def"`, `"def"`)
	f.Add(`*`, `"x"`)
	f.Fuzz(func(t *testing.T, header, etag string) {
		etagMatch(header, etag)
		// An entity tag is a quoted string without spaces or commas.
		if etag != "" && !strings.ContainsAny(etag, ", \t\r\n\v\f") && !strings.HasPrefix(etag, "W/") && !etagMatch(etag, etag) {
			t.Fatalf("%q does not match itself", etag)
		}
	})
}
