package taxii

import (
	"mime"
	"strconv"
	"strings"
)

// Media types of TAXII 2.1 (section 1.6.8 of the specification).
const (
	// MediaType is the media type of every TAXII 2.1 resource, including
	// the envelopes of the object endpoints, and of error messages.
	MediaType = "application/taxii+json;version=2.1"
	// STIXMediaType is the media type of STIX 2.1 content; collections
	// list it in media_types and manifests give it per object.
	STIXMediaType = "application/stix+json;version=2.1"
	// Version is the TAXII version this server implements, as
	// advertised in an API root's versions.
	Version = "2.1"
)

const taxiiType = "application/taxii+json"

// STIXMediaTypeFor returns the STIX media type of an object whose
// spec_version is specVersion ("2.1" when it has none, as cyber-observable
// objects may omit it).
func STIXMediaTypeFor(specVersion string) string {
	if specVersion == "" || specVersion == "2.1" {
		return STIXMediaType
	}
	return "application/stix+json;version=" + specVersion
}

// Acceptable reports whether a request whose Accept header is accept may
// be answered with [MediaType].
//
// TAXII clients must ask for application/taxii+json, optionally with
// version=2.1 (a media type without the version parameter means the
// latest version the server supports, which is 2.1). Any other version,
// or any other media type, is not acceptable: the server answers 406.
// Following HTTP (RFC 9110, section 12.5.1), a request without an Accept
// header, or one accepting */* or application/*, accepts anything; a
// media range with q=0 is refused. STIX media types are not acceptable:
// in TAXII 2.1 the object endpoints return envelopes, which are TAXII
// resources.
func Acceptable(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for part := range strings.SplitSeq(accept, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		typ, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(q, 64)
			if err != nil || f <= 0 {
				continue
			}
		}
		switch typ {
		case "*/*", "application/*":
			return true
		case taxiiType:
			if v, ok := params["version"]; !ok || v == Version {
				return true
			}
		}
	}
	return false
}

// ContentTypeOK reports whether a request body of media type contentType
// is a TAXII 2.1 resource: application/taxii+json with version=2.1 or
// without a version parameter (which means the latest version, 2.1).
// Anything else is answered with 415.
func ContentTypeOK(contentType string) bool {
	typ, params, err := mime.ParseMediaType(contentType)
	if err != nil || typ != taxiiType {
		return false
	}
	v, ok := params["version"]
	return !ok || v == Version
}
