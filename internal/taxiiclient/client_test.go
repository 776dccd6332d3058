package taxiiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

func newClient(f *fakeServer) *taxiiclient.Client {
	return &taxiiclient.Client{
		DiscoveryURL: f.srv.URL + "/taxii2/",
		APIRoot:      f.srv.URL + "/api1",
		HTTP:         f.srv.Client(),
		Auth:         taxiiclient.Auth{Token: "secret"},
		Limits: taxiiclient.Limits{BackoffBase: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			PerRequestTimeout: 10 * time.Second},
	}
}

// collect pulls and returns the ids received, in order, and every page.
func collect(t *testing.T, c *taxiiclient.Client, cp taxiiclient.Checkpoint) ([]string, []*taxiiclient.Page, taxiiclient.Checkpoint, error) {
	t.Helper()
	var ids []string
	var pages []*taxiiclient.Page
	cp, err := c.Pull(context.Background(), "c1", cp, func(p *taxiiclient.Page) error {
		pages = append(pages, p)
		for _, raw := range p.Objects {
			o, err := stix.Decode(raw)
			if err != nil {
				t.Fatalf("page object: %v", err)
			}
			ids = append(ids, o.ID)
		}
		return nil
	})
	return ids, pages, cp, err
}

func wantIDs(from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i))
	}
	return ids
}

func TestDiscoveryAndCollections(t *testing.T) {
	f := newFakeServer(t, 0)
	c := newClient(f)
	d, err := c.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Default != f.srv.URL+"/api1/" {
		t.Errorf("default api root %q", d.Default)
	}
	r, err := c.APIRootInfo(context.Background())
	if err != nil || r.MaxContentLength != f.maxLen {
		t.Fatalf("api root: %+v %v", r, err)
	}
	cols, err := c.Collections(context.Background())
	if err != nil || len(cols) != 1 || cols[0].ID != "c1" || !cols[0].CanRead {
		t.Fatalf("collections: %+v %v", cols, err)
	}
}

func TestPullWholeCollectionThenIncrements(t *testing.T) {
	for _, noNext := range []bool{false, true} {
		t.Run(fmt.Sprintf("noNext=%v", noNext), func(t *testing.T) {
			f := newFakeServer(t, 1050)
			f.noNext = noNext
			c := newClient(f)
			ids, pages, cp, err := collect(t, c, taxiiclient.Checkpoint{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantIDs(0, 1050), ids); diff != "" {
				t.Fatalf("ids (-want +got):\n%s", diff)
			}
			if len(pages) != 11 {
				t.Errorf("%d pages, want 11", len(pages))
			}
			if pages[0].ReceivedAt.IsZero() || pages[10].ReceivedAt.Before(pages[0].ReceivedAt) {
				t.Errorf("pages received at %v .. %v", pages[0].ReceivedAt, pages[10].ReceivedAt)
			}
			want := taxiiclient.Checkpoint{AddedAfter: fmtAdded(dateAdded(1049)), LastAdded: fmtAdded(dateAdded(1049))}
			if diff := cmp.Diff(want, cp); diff != "" {
				t.Fatalf("checkpoint (-want +got):\n%s", diff)
			}
			// Nothing new: one request, no objects.
			ids, _, cp2, err := collect(t, c, cp)
			if err != nil || len(ids) != 0 || cp2 != cp {
				t.Fatalf("second pull: %d objects, %+v, %v", len(ids), cp2, err)
			}
			// New objects arrive: exactly they are pulled.
			f.n = 1075
			ids, _, _, err = collect(t, c, cp)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantIDs(1050, 1075), ids); diff != "" {
				t.Fatalf("increment (-want +got):\n%s", diff)
			}
		})
	}
}

var errCrash = errors.New("simulated crash")

func TestPullResumesAfterCrash(t *testing.T) {
	for _, saveBeforeCrash := range []bool{true, false} {
		t.Run(fmt.Sprintf("saved=%v", saveBeforeCrash), func(t *testing.T) {
			f := newFakeServer(t, 730)
			store := map[string]int{} // id -> times received
			var saved []byte          // the persisted checkpoint
			run := func(crashAfter int) error {
				var cp taxiiclient.Checkpoint
				if saved != nil {
					if err := json.Unmarshal(saved, &cp); err != nil {
						t.Fatal(err)
					}
				}
				c := newClient(f) // a new process
				pages := 0
				_, err := c.Pull(context.Background(), "c1", cp, func(p *taxiiclient.Page) error {
					for _, raw := range p.Objects {
						o, _ := stix.Decode(raw)
						store[o.ID]++
					}
					pages++
					if pages == crashAfter && !saveBeforeCrash {
						return errCrash // stored, checkpoint not yet saved
					}
					b, err := json.Marshal(p.Checkpoint)
					if err != nil {
						return err
					}
					saved = b
					if pages == crashAfter {
						return errCrash
					}
					return nil
				})
				return err
			}
			if err := run(3); !errors.Is(err, errCrash) {
				t.Fatalf("first run: %v", err)
			}
			if err := run(2); !errors.Is(err, errCrash) {
				t.Fatalf("second run: %v", err)
			}
			if err := run(-1); err != nil {
				t.Fatalf("final run: %v", err)
			}
			if len(store) != 730 {
				t.Fatalf("%d distinct objects stored, want 730", len(store))
			}
			dups := 0
			for _, n := range store {
				dups += n - 1
			}
			if saveBeforeCrash && dups != 0 {
				t.Errorf("%d duplicates although each checkpoint was saved", dups)
			}
			if !saveBeforeCrash && dups != 200 {
				t.Errorf("%d duplicates, want the 2 pages stored but not checkpointed (200)", dups)
			}
		})
	}
}

func TestPullStaleNextToken(t *testing.T) {
	f := newFakeServer(t, 250)
	c := newClient(f)
	cp := taxiiclient.Checkpoint{Next: "token-the-server-forgot", LastAdded: fmtAdded(dateAdded(99))}
	ids, _, _, err := collect(t, c, cp)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantIDs(100, 250), ids); diff != "" {
		t.Fatalf("ids (-want +got):\n%s", diff)
	}
}

func TestPullInvalidObjectsReported(t *testing.T) {
	f := newFakeServer(t, 40)
	f.gen = func(i int) []byte {
		switch i % 10 {
		case 3:
			return []byte(strings.Replace(string(indicator(i)), `"pattern_type":"stix",`, "", 1))
		case 7:
			return []byte(`{"type":"indicator","id":"not-an-id"}`)
		}
		return indicator(i)
	}
	c := newClient(f)
	var invalid []taxiiclient.InvalidObject
	n := 0
	_, err := c.Pull(context.Background(), "c1", taxiiclient.Checkpoint{}, func(p *taxiiclient.Page) error {
		n += len(p.Objects)
		invalid = append(invalid, p.Invalid...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 32 || len(invalid) != 8 {
		t.Fatalf("%d valid, %d invalid; want 32 and 8", n, len(invalid))
	}
	if invalid[0].Index != 3 || invalid[0].ID != wantIDs(3, 4)[0] || !strings.Contains(invalid[0].Error(), "pattern_type") {
		t.Errorf("first invalid: %v", invalid[0])
	}
	if invalid[1].Index != 7 || !strings.Contains(invalid[1].Error(), "object 7") {
		t.Errorf("second invalid: %v", invalid[1])
	}
}

// serveObjects makes the fake server answer objects requests with fn.
func serveObjects(f *fakeServer, fn func(w http.ResponseWriter, r *http.Request, count int64)) {
	f.misbehave = func(w http.ResponseWriter, r *http.Request, count int64) bool {
		if !strings.Contains(r.URL.Path, "/objects/") {
			return false
		}
		fn(w, r, count)
		return true
	}
}

func TestPullBadPeers(t *testing.T) {
	obj := string(indicator(1))
	tests := []struct {
		name   string
		serve  func(w http.ResponseWriter, r *http.Request, count int64)
		limits func(l *taxiiclient.Limits)
		want   error
		text   string
	}{
		{"html", func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<!DOCTYPE html><html><body>Login</body></html>"))
		}, nil, taxiiclient.ErrMediaType, `Content-Type "text/html; charset=utf-8"`},
		{"wrong media type", func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"objects":[]}`))
		}, nil, taxiiclient.ErrMediaType, `want application/taxii+json;version=2.1`},
		{"taxii 2.0", func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Content-Type", "application/vnd.oasis.taxii+json; version=2.0")
			w.Write([]byte(`{}`))
		}, nil, taxiiclient.ErrMediaType, `vnd.oasis.taxii+json`},
		{"html with the right type", func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			w.Write([]byte("<html>oops</html>"))
		}, nil, taxiiclient.ErrBadEnvelope, `not a JSON object`},
		{"not an envelope", func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			w.Write([]byte(`{"more":"yes"}`))
		}, nil, taxiiclient.ErrBadEnvelope, `objects/`},
		{"endless more with the same next", func(w http.ResponseWriter, r *http.Request, _ int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			fmt.Fprintf(w, `{"more":true,"next":"again","objects":[%s]}`, obj)
		}, nil, taxiiclient.ErrEndlessPaging, `next "again" again`},
		{"endless more with fresh tokens, same objects", func(w http.ResponseWriter, r *http.Request, c int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			fmt.Fprintf(w, `{"more":true,"next":"t%d","objects":[%s]}`, c, obj)
		}, nil, taxiiclient.ErrEndlessPaging, `repeats the previous page`},
		{"endless empty pages", func(w http.ResponseWriter, r *http.Request, c int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			fmt.Fprintf(w, `{"more":true,"next":"t%d","objects":[]}`, c)
		}, nil, taxiiclient.ErrEndlessPaging, `3 empty pages`},
		{"endless more, new objects each time", func(w http.ResponseWriter, r *http.Request, c int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			fmt.Fprintf(w, `{"more":true,"next":"t%d","objects":[%s]}`, c, indicator(int(c)))
		}, func(l *taxiiclient.Limits) { l.MaxPages = 7 }, taxiiclient.ErrEndlessPaging, `more than 7 pages`},
		{"more without next or date", func(w http.ResponseWriter, r *http.Request, c int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			fmt.Fprintf(w, `{"more":true,"objects":[%s]}`, obj)
		}, nil, taxiiclient.ErrEndlessPaging, `without next or X-TAXII-Date-Added-Last`},
		{"date that does not advance", func(w http.ResponseWriter, r *http.Request, c int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			w.Header().Set("X-TAXII-Date-Added-Last", "2026-01-01T00:00:00.000000Z")
			fmt.Fprintf(w, `{"more":true,"objects":[%s]}`, indicator(int(c)))
		}, nil, taxiiclient.ErrEndlessPaging, `does not advance`},
		{"too many objects in a page", func(w http.ResponseWriter, r *http.Request, c int64) {
			w.Header().Set("Content-Type", mediaTAXII)
			fmt.Fprintf(w, `{"objects":[%s,%s,%s]}`, obj, obj, obj)
		}, func(l *taxiiclient.Limits) { l.MaxObjects = 2 }, taxiiclient.ErrTooLarge, `3 objects in one page`},
		{"unauthorized is not retried", func(w http.ResponseWriter, r *http.Request, c int64) {
			taxiiError(w, 401, "bad key")
		}, nil, taxiiclient.ErrHTTPStatus, `401 Unauthorized: bad key`},
		{"503 forever", func(w http.ResponseWriter, r *http.Request, c int64) {
			taxiiError(w, 503, "down")
		}, func(l *taxiiclient.Limits) { l.MaxRetries = 3 }, taxiiclient.ErrHTTPStatus, `503 Service Unavailable: down (after 4 attempts)`},
		{"retry-after too long", func(w http.ResponseWriter, r *http.Request, c int64) {
			w.Header().Set("Retry-After", "86400")
			taxiiError(w, 429, "slow down")
		}, nil, taxiiclient.ErrHTTPStatus, `Retry-After 24h0m0s exceeds`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t, 0)
			serveObjects(f, tc.serve)
			c := newClient(f)
			if tc.limits != nil {
				tc.limits(&c.Limits)
			}
			_, _, _, err := collect(t, c, taxiiclient.Checkpoint{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), f.srv.URL+"/api1/collections/c1/objects/") {
				t.Fatalf("error %q does not name the URL and %q", err, tc.text)
			}
			if n := f.objReqs.Load() + f.requests.Load(); n > 40 {
				t.Fatalf("%d requests: not bounded", n)
			}
		})
	}
}

func TestPullRetries(t *testing.T) {
	t.Run("503 then success", func(t *testing.T) {
		f := newFakeServer(t, 150)
		serveObjects(f, func(w http.ResponseWriter, r *http.Request, c int64) {})
		failures := 2
		var mu sync.Mutex
		f.misbehave = func(w http.ResponseWriter, r *http.Request, c int64) bool {
			mu.Lock()
			defer mu.Unlock()
			if failures > 0 {
				failures--
				taxiiError(w, 503, "busy")
				return true
			}
			return false
		}
		ids, _, _, err := collect(t, newClient(f), taxiiclient.Checkpoint{})
		if err != nil || len(ids) != 150 {
			t.Fatalf("%d ids, %v", len(ids), err)
		}
		if f.requests.Load() != 4 {
			t.Errorf("%d requests, want 2 failed + 2 pages", f.requests.Load())
		}
	})
	t.Run("429 with Retry-After", func(t *testing.T) {
		f := newFakeServer(t, 50)
		var at []time.Time
		f.misbehave = func(w http.ResponseWriter, r *http.Request, c int64) bool {
			at = append(at, time.Now())
			if c == 1 {
				w.Header().Set("Retry-After", "1")
				taxiiError(w, 429, "rate limited")
				return true
			}
			return false
		}
		ids, _, _, err := collect(t, newClient(f), taxiiclient.Checkpoint{})
		if err != nil || len(ids) != 50 {
			t.Fatalf("%d ids, %v", len(ids), err)
		}
		if len(at) != 2 || at[1].Sub(at[0]) < 950*time.Millisecond {
			t.Fatalf("retried after %v, want Retry-After's 1 s honoured", at[1].Sub(at[0]))
		}
	})
}

// TestSlowPeerDoesNotStopOthers runs a trickling peer and a good one
// concurrently: the slow one fails with ErrSlow, the other completes.
func TestSlowPeerDoesNotStopOthers(t *testing.T) {
	slow := newFakeServer(t, 0)
	serveObjects(slow, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Type", mediaTAXII)
		fl := w.(http.Flusher)
		for _, b := range []byte(`{"more":false,"objects":[]}`) {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			w.Write([]byte{b})
			fl.Flush()
		}
	})
	good := newFakeServer(t, 300)
	cs := newClient(slow)
	cs.Limits.SlowGrace = 300 * time.Millisecond
	cs.Limits.MinBytesPerSecond = 100
	cs.Limits.MaxRetries = 1
	var wg sync.WaitGroup
	var slowErr, goodErr error
	var goodIDs []string
	start := time.Now()
	wg.Go(func() { _, _, _, slowErr = collect(t, cs, taxiiclient.Checkpoint{}) })
	wg.Go(func() { goodIDs, _, _, goodErr = collect(t, newClient(good), taxiiclient.Checkpoint{}) })
	wg.Wait()
	if !errors.Is(slowErr, taxiiclient.ErrSlow) || !strings.Contains(slowErr.Error(), "bytes/s") {
		t.Fatalf("slow peer: %v, want ErrSlow", slowErr)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("slow peer detected only after %v", time.Since(start))
	}
	if goodErr != nil || len(goodIDs) != 300 {
		t.Fatalf("good peer: %d ids, %v", len(goodIDs), goodErr)
	}
}

func TestPullSilentPeer(t *testing.T) {
	f := newFakeServer(t, 0)
	serveObjects(f, func(w http.ResponseWriter, r *http.Request, _ int64) {
		<-r.Context().Done() // never answers
	})
	c := newClient(f)
	c.Limits.HeaderTimeout = 200 * time.Millisecond
	c.Limits.MaxRetries = -1
	_, _, _, err := collect(t, c, taxiiclient.Checkpoint{})
	if !errors.Is(err, taxiiclient.ErrSlow) || !strings.Contains(err.Error(), "no response headers within 200ms") {
		t.Fatalf("error %v, want ErrSlow", err)
	}
}

func TestPush(t *testing.T) {
	f := newFakeServer(t, 0)
	f.maxLen = 20_000 // ~70 objects per request
	f.pollsUntil = 2
	c := newClient(f)
	var objs []json.RawMessage
	for i := range 250 {
		objs = append(objs, indicator(i))
	}
	objs[17] = json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000011-0000-4000-8000-000000000011"}`)
	res, err := c.Push(context.Background(), "c1", objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Statuses) < 4 {
		t.Errorf("%d requests; max_content_length should have split 250 objects into at least 4", len(res.Statuses))
	}
	if res.Total != 250 || res.Success != 249 || res.Failure != 1 || res.Pending != 0 {
		t.Fatalf("result %d total, %d success, %d failure, %d pending", res.Total, res.Success, res.Failure, res.Pending)
	}
	if res.Failures[0].ID != "indicator--00000011-0000-4000-8000-000000000011" || !strings.Contains(res.Failures[0].Message, "pattern") {
		t.Errorf("failure %+v", res.Failures[0])
	}
	for _, s := range res.Statuses {
		if s.Status != "complete" {
			t.Errorf("status %s is %s", s.ID, s.Status)
		}
	}
	if len(f.pushed) != 249 {
		t.Errorf("server holds %d objects", len(f.pushed))
	}
}

func TestPushErrors(t *testing.T) {
	t.Run("object too large", func(t *testing.T) {
		f := newFakeServer(t, 0)
		f.maxLen = 1000
		big := json.RawMessage(`{"type":"indicator","id":"indicator--1","x":"` + strings.Repeat("a", 2000) + `"}`)
		_, err := newClient(f).Push(context.Background(), "c1", []json.RawMessage{indicator(1), big})
		if !errors.Is(err, taxiiclient.ErrTooLarge) || !strings.Contains(err.Error(), "object 1 (indicator--1)") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("status never complete", func(t *testing.T) {
		f := newFakeServer(t, 0)
		f.pollsUntil = 1 << 30
		c := newClient(f)
		c.Limits.StatusTimeout = 400 * time.Millisecond
		res, err := c.Push(context.Background(), "c1", []json.RawMessage{indicator(1)})
		if !errors.Is(err, taxiiclient.ErrStatusTimeout) || !strings.Contains(err.Error(), `still "pending"`) {
			t.Fatalf("error %v", err)
		}
		if res == nil {
			t.Fatal("no partial result")
		}
	})
	t.Run("basic auth refused", func(t *testing.T) {
		f := newFakeServer(t, 0)
		c := newClient(f)
		c.Auth = taxiiclient.Auth{Username: "u", Password: "p"}
		_, err := c.Push(context.Background(), "c1", []json.RawMessage{indicator(1)})
		se, ok := errors.AsType[*taxiiclient.StatusError](err)
		if !ok || se.StatusCode != 401 {
			t.Fatalf("error %v", err)
		}
	})
}

// FuzzPullBody serves arbitrary bodies as TAXII envelopes: Pull must
// return (an error or a checkpoint) without panicking, within its page
// bound.
func FuzzPullBody(f *testing.F) {
	f.Add([]byte(`{"more":false,"objects":[]}`), "")
	f.Add([]byte(`{"more":true,"next":"x","objects":[{"type":"indicator"}]}`), "2026-01-01T00:00:00Z")
	f.Add([]byte(`{"more":true,"objects":[1,2,null]}`), "x")
	f.Add([]byte(`{"objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--00000001-0000-4000-8000-000000000001"}]}`), "")
	f.Add([]byte(`[]`), "")
	srv := newFakeServer(f, 0)
	var body []byte
	var last string
	serveObjects(srv, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Type", mediaTAXII)
		if last != "" {
			w.Header().Set("X-TAXII-Date-Added-Last", last)
		}
		w.Write(body)
	})
	c := newClient(srv)
	c.Limits.MaxPages = 10
	c.Limits.MaxRetries = -1
	f.Fuzz(func(t *testing.T, b []byte, l string) {
		if strings.ContainsAny(l, "\r\n\x00") {
			return
		}
		body, last = b, l
		pages := 0
		_, _ = c.Pull(context.Background(), "c1", taxiiclient.Checkpoint{}, func(p *taxiiclient.Page) error {
			pages++
			for _, raw := range p.Objects {
				if !json.Valid(raw) {
					t.Fatalf("invalid JSON object delivered: %q", raw)
				}
			}
			return nil
		})
		if pages > 10 {
			t.Fatalf("%d pages beyond MaxPages", pages)
		}
	})
}
