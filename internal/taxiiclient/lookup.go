package taxiiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// lookupChunk is how many ids one look-up request names (the URL's
// length stays well within servers' limits).
const lookupChunk = 100

// Lookup returns the latest version the server holds of each of ids in
// collection coll, by id (Get Objects with match[id], paged); ids it does
// not hold are absent. A 404 (none of a chunk's ids held) is no error.
func (c *Client) Lookup(ctx context.Context, coll string, ids []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	base := c.collectionURL(coll) + "objects/"
	for off := 0; off < len(ids); off += lookupChunk {
		part := ids[off:min(off+lookupChunk, len(ids))]
		next := ""
		for {
			q := url.Values{"match[id]": {strings.Join(part, ",")}, "limit": {"1000"}}
			if next != "" {
				q.Set("next", next)
			}
			var env envelope
			if _, err := c.getJSON(ctx, base+"?"+q.Encode(), &env); err != nil {
				if se, ok := errors.AsType[*StatusError](err); ok && se.StatusCode == http.StatusNotFound {
					break
				}
				return nil, fmt.Errorf("look up %d objects in collection %s: %w", len(part), coll, err)
			}
			for _, o := range env.Objects {
				var h struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(o, &h) == nil && h.ID != "" {
					out[h.ID] = o
				}
			}
			if !env.More || env.Next == "" {
				break
			}
			next = env.Next
		}
	}
	return out, nil
}
