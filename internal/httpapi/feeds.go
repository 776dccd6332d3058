package httpapi

import (
	"github.com/entente-cti/entente/internal/node"
	"net/http"
	"time"

	"github.com/entente-cti/entente"
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

func (h *handler) addFeed(w http.ResponseWriter, r *http.Request) {
	var fr FeedRequest
	if err := h.decodeAPIBody(w, r, &fr); err != nil {
		h.writeError(w, r, err)
		return
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
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "%s: %q is not a duration such as 1h", d.name, d.v))
			return
		}
		*d.dst = v
	}
	f, err := h.svc.AddFeed(r.Context(), principal(r), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusCreated, f)
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
