package taxiiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/entente-cti/entente/internal/taxii"
	"net/http"
	"net/url"
	"time"
)

// Status is a TAXII 2.1 status resource.
type Status = taxii.Status

// StatusDetail is one object of a status resource.
type StatusDetail = taxii.StatusDetail

// PushResult is the outcome of a push: the status of each request it took
// and their totals.
type PushResult struct {
	// Statuses are the final status resources, one per request.
	Statuses []Status
	// Total, Success, Failure and Pending sum the statuses' counts.
	Total, Success, Failure, Pending int
	// Failures lists the objects the server refused, with its messages.
	Failures []StatusDetail
}

// defaultMaxRequest bounds a push request when the API root states no
// max_content_length.
const defaultMaxRequest = 16 << 20

// Push adds objects to collection coll: it POSTs them in envelopes no
// larger than the API root's max_content_length, then polls each status
// resource until it is complete. A request is retried like any other
// (adding the same object version twice is harmless in TAXII). An error is
// returned when a request fails, an object alone exceeds the limit, or a
// status is not complete within Limits.StatusTimeout; the result then
// holds the statuses obtained so far.
func (c *Client) Push(ctx context.Context, coll string, objects []json.RawMessage) (*PushResult, error) {
	lim := c.Limits.withDefaults()
	c.mu.Lock()
	info := c.rootInfo
	c.mu.Unlock()
	if info == nil {
		var err error
		if info, err = c.APIRootInfo(ctx); err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
	}
	maxLen := info.MaxContentLength
	if maxLen <= 0 || maxLen > defaultMaxRequest {
		maxLen = defaultMaxRequest
	}
	u := c.collectionURL(coll) + "objects/"
	res := &PushResult{}
	const head, tail = `{"objects":[`, `]}`
	var body bytes.Buffer
	count := 0
	flush := func() error {
		if count == 0 {
			return nil
		}
		body.WriteString(tail)
		st, err := c.post(ctx, lim, u, body.Bytes())
		body.Reset()
		count = 0
		if err != nil {
			return err
		}
		res.add(*st)
		return nil
	}
	for i, obj := range objects {
		if int64(len(head)+len(obj)+len(tail)) > maxLen {
			return res, fmt.Errorf("push %s: %w: object %d (%s) is %d bytes; the server accepts requests of at most %d",
				u, ErrTooLarge, i, objectID(obj), len(obj), maxLen)
		}
		if count > 0 && int64(body.Len()+1+len(obj)+len(tail)) > maxLen {
			if err := flush(); err != nil {
				return res, err
			}
		}
		if count == 0 {
			body.WriteString(head)
		} else {
			body.WriteByte(',')
		}
		body.Write(obj)
		count++
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, nil
}

func (r *PushResult) add(s Status) {
	r.Statuses = append(r.Statuses, s)
	r.Total += s.TotalCount
	r.Success += s.SuccessCount
	r.Failure += s.FailureCount
	r.Pending += s.PendingCount
	r.Failures = append(r.Failures, s.Failures...)
}

// post sends one envelope and polls its status until complete.
func (c *Client) post(ctx context.Context, lim Limits, u string, body []byte) (*Status, error) {
	resp, err := c.do(ctx, http.MethodPost, u, body, MediaTAXII)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	var st Status
	if err := json.Unmarshal(resp.body, &st); err != nil || st.ID == "" {
		return nil, fmt.Errorf("push POST %s: %w: the response is not a status resource", u, ErrBadEnvelope)
	}
	deadline := time.Now().Add(lim.StatusTimeout)
	wait := 100 * time.Millisecond
	su := c.root() + "status/" + url.PathEscape(st.ID) + "/"
	for st.Status != "complete" {
		if time.Now().Add(wait).After(deadline) {
			return &st, fmt.Errorf("push %s: %w: status %s still %q after %s (%d of %d pending)",
				u, ErrStatusTimeout, st.ID, st.Status, lim.StatusTimeout, st.PendingCount, st.TotalCount)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &st, fmt.Errorf("push %s: poll status %s: %w", u, st.ID, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 2*time.Second)
		var next Status
		if _, err := c.getJSON(ctx, su, &next); err != nil {
			return &st, fmt.Errorf("push: poll status: %w", err)
		}
		if next.ID != st.ID {
			return &st, fmt.Errorf("push GET %s: %w: status id %q, want %q", su, ErrBadEnvelope, next.ID, st.ID)
		}
		st = next
	}
	return &st, nil
}

// objectID returns the id of a raw object, or "" when it has none.
func objectID(raw json.RawMessage) string {
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.ID
}
