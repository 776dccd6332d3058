package taxiiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/entente-cti/entente/internal/stix"
)

// Checkpoint is where a pull resumes. The caller persists it (it encodes
// to JSON) after storing each page, and passes it to the next Pull. The
// zero Checkpoint pulls the whole collection. Timestamps are kept exactly
// as the server wrote them.
type Checkpoint struct {
	// AddedAfter is the added_after filter: while Next is set, the filter
	// of the paging run Next belongs to; otherwise the point the next run
	// starts after.
	AddedAfter string `json:"added_after,omitempty"`
	// Next is the server's next token of the paging run in progress.
	Next string `json:"next,omitempty"`
	// LastAdded is the last X-TAXII-Date-Added-Last header seen: the
	// date_added of the newest object received so far.
	LastAdded string `json:"last_added,omitempty"`
}

// InvalidObject is an object of a page that is not valid STIX 2.1.
type InvalidObject struct {
	// Index is the object's position in the page's objects list.
	Index int
	// ID is the object's id when it could be read.
	ID string
	// Err says what is wrong (a *stix.ValidationError when the object
	// decoded).
	Err error
}

// Error formats the problem with the object's index and id.
func (e InvalidObject) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("object %d (%s): %v", e.Index, e.ID, e.Err)
	}
	return fmt.Sprintf("object %d: %v", e.Index, e.Err)
}

// Page is one page of a pull.
type Page struct {
	// URL is the URL the page was read from.
	URL string
	// Objects are the page's valid objects, verbatim.
	Objects []json.RawMessage
	// Invalid are the page's objects that are not valid STIX 2.1.
	Invalid []InvalidObject
	// DateAddedFirst and DateAddedLast are the X-TAXII-Date-Added-First
	// and -Last headers ("" when absent).
	DateAddedFirst, DateAddedLast string
	// Checkpoint is where to resume once this page is stored.
	Checkpoint Checkpoint
	// ReceivedAt is when the page arrived. With the peer it came from, it
	// is the provenance the caller records for each object, so that the
	// policy gate can apply its re-sharing rule.
	ReceivedAt time.Time
}

// envelope is the TAXII 2.1 envelope resource.
type envelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

// maxEmptyPages is how many consecutive empty pages with more: true are
// tolerated.
const maxEmptyPages = 3

// Pull reads the objects of collection coll added after the checkpoint,
// page by page, and calls fn with each. It returns the checkpoint reached:
// after the last page when err is nil, after the last page fn accepted
// otherwise (so a caller that persisted every page's checkpoint already
// has it). An error from fn stops the pull and is returned wrapped.
func (c *Client) Pull(ctx context.Context, coll string, cp Checkpoint, fn func(*Page) error) (Checkpoint, error) {
	lim := c.Limits.withDefaults()
	base := c.collectionURL(coll) + "objects/"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops a prefetch in flight
	seen := map[string]bool{}
	var prevSig uint64
	empty := 0
	// The next page is fetched while the current one is validated and
	// stored, so that the network and the store work at the same time.
	pending := c.fetch(ctx, base, cp, lim, true)
	for pages := 1; ; pages++ {
		f := <-pending
		if f.err != nil {
			return cp, f.err // it names the request that failed
		}
		cp, u := f.cp, f.url
		var env envelope
		if err := json.Unmarshal(f.resp.body, &env); err != nil {
			return cp, fmt.Errorf("pull %s: %w: %v", u, ErrBadEnvelope, err)
		}
		if len(env.Objects) > lim.MaxObjects {
			return cp, fmt.Errorf("pull %s: %w: %d objects in one page (limit %d)", u, ErrTooLarge, len(env.Objects), lim.MaxObjects)
		}
		first, last := f.resp.header.Get("X-TAXII-Date-Added-First"), f.resp.header.Get("X-TAXII-Date-Added-Last")
		ncp := Checkpoint{AddedAfter: cp.AddedAfter, LastAdded: firstNonEmpty(last, cp.LastAdded)}
		switch {
		case env.More && env.Next != "":
			if env.Next == cp.Next || seen[env.Next] {
				return cp, fmt.Errorf("pull %s: %w: the server answered more: true with next %q again", u, ErrEndlessPaging, env.Next)
			}
			seen[env.Next] = true
			ncp.Next = env.Next
		case env.More:
			if last == "" {
				return cp, fmt.Errorf("pull %s: %w: more: true without next or X-TAXII-Date-Added-Last", u, ErrEndlessPaging)
			}
			if last == cp.AddedAfter {
				return cp, fmt.Errorf("pull %s: %w: more: true but X-TAXII-Date-Added-Last %q does not advance", u, ErrEndlessPaging, last)
			}
			ncp.AddedAfter = last
		default:
			ncp.AddedAfter = firstNonEmpty(ncp.LastAdded, cp.AddedAfter)
		}
		if env.More {
			if len(env.Objects) == 0 {
				if empty++; empty >= maxEmptyPages {
					return cp, fmt.Errorf("pull %s: %w: %d empty pages in a row with more: true", u, ErrEndlessPaging, empty)
				}
			} else {
				empty = 0
				sig := signature(env.Objects)
				if sig == prevSig {
					return cp, fmt.Errorf("pull %s: %w: the page repeats the previous page's objects", u, ErrEndlessPaging)
				}
				prevSig = sig
			}
			if pages < lim.MaxPages {
				pending = c.fetch(ctx, base, ncp, lim, false)
			}
		}
		page := &Page{URL: u, DateAddedFirst: first, DateAddedLast: last, Checkpoint: ncp, ReceivedAt: f.at}
		page.Objects, page.Invalid = validate(env.Objects)
		if err := fn(page); err != nil {
			return cp, fmt.Errorf("pull %s: %w", u, err)
		}
		cp = ncp
		if !env.More {
			return cp, nil
		}
		if pages >= lim.MaxPages {
			return cp, fmt.Errorf("pull %s: %w: more than %d pages in one pull", u, ErrEndlessPaging, lim.MaxPages)
		}
	}
}

// fetched is a page response, or why there is none.
type fetched struct {
	resp *response
	url  string
	cp   Checkpoint // the checkpoint the page was read at
	at   time.Time
	err  error
}

// fetch requests the page at cp in the background. On the first page of a
// pull, a next token the server no longer accepts (400 or 404) is dropped
// and the page is requested again from the last date_added seen.
func (c *Client) fetch(ctx context.Context, base string, cp Checkpoint, lim Limits, first bool) <-chan fetched {
	ch := make(chan fetched, 1)
	go func() {
		u := pageURL(base, cp, lim.PageSize)
		resp, err := c.do(ctx, http.MethodGet, u, nil, "")
		if se, ok := errors.AsType[*StatusError](err); ok && first && cp.Next != "" &&
			(se.StatusCode == http.StatusBadRequest || se.StatusCode == http.StatusNotFound) {
			cp = Checkpoint{AddedAfter: firstNonEmpty(cp.LastAdded, cp.AddedAfter), LastAdded: cp.LastAdded}
			u = pageURL(base, cp, lim.PageSize)
			resp, err = c.do(ctx, http.MethodGet, u, nil, "")
		}
		ch <- fetched{resp: resp, url: u, cp: cp, at: time.Now(), err: err}
	}()
	return ch
}

// pageURL builds the objects URL for a checkpoint.
func pageURL(base string, cp Checkpoint, limit int) string {
	q := url.Values{}
	if cp.AddedAfter != "" {
		q.Set("added_after", cp.AddedAfter)
	}
	if cp.Next != "" {
		q.Set("next", cp.Next)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

// signature identifies a page's content cheaply: its length and a hash of
// its first and last objects.
func signature(objs []json.RawMessage) uint64 {
	h := fnv.New64a()
	h.Write(objs[0])
	h.Write(objs[len(objs)-1])
	return h.Sum64() ^ uint64(len(objs))
}

// validate splits a page's objects into the valid and the invalid.
func validate(objs []json.RawMessage) ([]json.RawMessage, []InvalidObject) {
	var bad []InvalidObject
	good := objs[:0:len(objs)]
	for i, raw := range objs {
		o, err := stix.Decode(raw)
		if err == nil {
			err = stix.Validate(o)
		}
		if err != nil {
			id := ""
			if o != nil {
				id = o.ID
			}
			bad = append(bad, InvalidObject{Index: i, ID: id, Err: err})
			continue
		}
		good = append(good, raw)
	}
	return good, bad
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
