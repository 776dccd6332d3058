package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
)

// FeedRequest is the body of POST /api/v1/feeds: a feed to poll.
// Interval and ValidFor are Go durations ("1h", "720h").
type FeedRequest struct {
	Name       string `json:"name"`
	URL        string `json:"url"`
	Format     string `json:"format,omitempty"`
	Interval   string `json:"interval,omitempty"`
	TLP        string `json:"tlp,omitempty"`
	Confidence int    `json:"confidence,omitempty"`
	ValidFor   string `json:"valid_for,omitempty"`
	Collection string `json:"collection,omitempty"`
}

func (h *handler) listFeeds(w http.ResponseWriter, r *http.Request) {
	fs, err := h.svc.Feeds(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if fs == nil {
		fs = []node.Feed{}
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"feeds": fs})
}

// feed reads a FeedRequest body as a feed.
func (h *handler) feed(w http.ResponseWriter, r *http.Request) (node.Feed, error) {
	var fr FeedRequest
	if err := h.decodeAPIBody(w, r, &fr); err != nil {
		return node.Feed{}, err
	}
	f := node.Feed{Name: fr.Name, URL: fr.URL, Format: fr.Format, TLP: fr.TLP, Confidence: fr.Confidence, Collection: fr.Collection}
	for _, d := range []struct {
		name, v string
		dst     *time.Duration
	}{{"interval", fr.Interval, &f.Interval}, {"valid_for", fr.ValidFor, &f.ValidFor}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil {
			return f, entente.Errorf(entente.EINVALID, "%s: %q is not a duration such as 1h", d.name, d.v)
		}
		*d.dst = v
	}
	return f, nil
}

func (h *handler) addFeed(w http.ResponseWriter, r *http.Request) {
	f, err := h.feed(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f, err = h.svc.AddFeed(r.Context(), principal(r), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusCreated, f)
}

// updateFeed serves PUT /api/v1/feeds/{id}: the feed's new
// configuration (a FeedRequest), its poll state kept.
func (h *handler) updateFeed(w http.ResponseWriter, r *http.Request) {
	f, err := h.feed(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f.ID = r.PathValue("id")
	f, err = h.svc.UpdateFeed(r.Context(), principal(r), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, f)
}

// FeedChange is a field a feed's new configuration changes.
type FeedChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// feedChanges lists the configuration fields that differ between a and
// b.
func feedChanges(a, b node.Feed) []FeedChange {
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	out := []FeedChange{}
	for _, c := range []FeedChange{
		{"name", a.Name, b.Name},
		{"url", a.URL, b.URL},
		{"format", a.Format, b.Format},
		{"interval", dur(a.Interval), dur(b.Interval)},
		{"tlp", a.TLP, b.TLP},
		{"confidence", strconv.Itoa(a.Confidence), strconv.Itoa(b.Confidence)},
		{"valid_for", dur(a.ValidFor), dur(b.ValidFor)},
		{"collection", a.Collection, b.Collection},
	} {
		if c.From != c.To {
			out = append(out, c)
		}
	}
	return out
}

// previewFeed serves POST /api/v1/feeds/{id}/preview: what saving the
// new configuration (a FeedRequest) would change, checked as PUT checks
// it, without saving it.
func (h *handler) previewFeed(w http.ResponseWriter, r *http.Request) {
	f, err := h.feed(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f.ID = r.PathValue("id")
	before, after, err := h.svc.CheckFeedUpdate(r.Context(), principal(r), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"before": before, "after": after, "changes": feedChanges(before, after)})
}

func (h *handler) removeFeed(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.RemoveFeed(r.Context(), principal(r), r.PathValue("id")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pollFeed polls a feed now and answers the feed with its new state; a
// failed poll is 200 too, with LastError set (the request itself worked).
func (h *handler) pollFeed(w http.ResponseWriter, r *http.Request) {
	f, err := h.svc.PollFeed(r.Context(), principal(r), r.PathValue("id"))
	if err != nil && f.ID == "" {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, f)
}
