package blindhttp

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"

	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/observable"
)

var testNow = time.Date(2026, 12, 6, 12, 30, 0, 0, time.UTC)

// newNode serves srv on loopback to the partner whose token is "tok-b",
// with budget.
func newNode(t testing.TB, budget blind.Budget, opt func(*blind.Config)) (*blind.Server, *Client) {
	t.Helper()
	c := blind.Config{Secret: bytes.Repeat([]byte{1}, 32), Now: func() time.Time { return testNow }}
	if opt != nil {
		opt(&c)
	}
	srv, err := blind.NewServer(c)
	if err != nil {
		t.Fatal(err)
	}
	auth := func(r *http.Request) (Grant, error) {
		if r.Header.Get("Authorization") != "Bearer tok-b" {
			return Grant{}, &blind.Error{Reason: blind.ReasonNoAccess, Index: -1, Message: "unknown key"}
		}
		return Grant{Partner: "B", Budget: budget}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/blind/", http.StripPrefix("/api/v1/blind", Handler(Direct(srv), auth, nil)))
	ts := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(ts.Close)
	return srv, &Client{Base: ts.URL + "/api/v1/blind/", Token: "tok-b", HTTP: ts.Client()}
}

// TestRFC9497VectorsThroughEndpoint posts the RFC's blinded elements to
// the evaluate route, with the vectors' key pinned for the partner.
func TestRFC9497VectorsThroughEndpoint(t *testing.T) {
	data, err := os.ReadFile("../testdata/rfc9497-ristretto255-oprf.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Seed, KeyInfo string
		Vectors       []struct{ BlindedElement, EvaluationElement string }
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	seed, _ := hex.DecodeString(v.Seed)
	info, _ := hex.DecodeString(v.KeyInfo)
	key, err := oprf.DeriveKey(oprf.SuiteRistretto255, oprf.BaseMode, seed, info)
	if err != nil {
		t.Fatal(err)
	}
	srv, client := newNode(t, blind.Budget{Limit: 10, Period: time.Hour}, nil)
	epoch := srv.Epochs().At(testNow)
	srv.Keys().Pin("B", epoch, key)
	req := &blind.EvalRequest{Epoch: epoch}
	for _, tv := range v.Vectors {
		b, _ := hex.DecodeString(tv.BlindedElement)
		req.Elements = append(req.Elements, b)
	}
	resp, err := client.Evaluate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, tv := range v.Vectors {
		if got := hex.EncodeToString(resp.Elements[i]); got != tv.EvaluationElement {
			t.Errorf("vector %d: %s, want %s", i, got, tv.EvaluationElement)
		}
	}
}

func TestTranslateOverHTTP(t *testing.T) {
	ctx := context.Background()
	srv, client := newNode(t, blind.Budget{Limit: 50, Period: time.Hour}, nil)
	items := []blind.Indicator{
		{Ref: 1, Kind: observable.IPv4, Value: "203.0.113.9"},
		{Ref: 2, Kind: observable.CIDR4, Value: "198.51.100.0/24"},
		{Ref: 3, Kind: observable.Domain, Value: "evil.example"},
	}
	if _, err := srv.Update(ctx, "B", items, nil); err != nil {
		t.Fatal(err)
	}
	tr := blind.NewTranslator(client)
	info, err := tr.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.SetLen != 3 || info.Budget.Limit != 50 {
		t.Fatalf("info %+v", info)
	}
	var inputs []string
	inputs = info.Params.Queries(observable.IPv4, "203.0.113.9", inputs)
	inputs = info.Params.Queries(observable.IPv4, "198.51.100.77", inputs)
	inputs = info.Params.Queries(observable.IPv4, "192.0.2.1", inputs)
	inputs = info.Params.Queries(observable.Domain, "www.evil.example", inputs)
	if _, err := tr.Translate(ctx, inputs); err != nil {
		t.Fatal(err)
	}
	hits, refs := tr.Hits()
	want := []string{"domain\x00evil.example", "ipv4\x00203.0.113.9", "net4\x00198.51.100.0/24"}
	if strings.Join(hits, "|") != strings.Join(want, "|") {
		t.Fatalf("hits %q, want %q", hits, want)
	}
	for i, r := range refs {
		if got := srv.Resolve("B", r); len(got) != 1 {
			t.Errorf("%q: reference %s resolves to %v", hits[i], r, got)
		}
	}
	// The budget: 50, of which the inputs above used len(inputs).
	rest := 50 - len(inputs)
	more := make([]string, rest+1)
	for i := range more {
		more[i] = fmt.Sprintf("ipv4\x00192.0.2.%d", i+100)
	}
	_, err = tr.Translate(ctx, more)
	var e *blind.Error
	if !errors.As(err, &e) || e.Reason != blind.ReasonBudget || e.RetryAfter != 30*time.Minute {
		t.Fatalf("past the budget: %v, want a budget refusal retrying after 30m", err)
	}
}

func TestRefusalsOverHTTP(t *testing.T) {
	srv, client := newNode(t, blind.Budget{Limit: 5, Period: time.Hour}, func(c *blind.Config) { c.MaxBatch = 4 })
	epoch := srv.Epochs().At(testNow)
	post := func(body string, token string) (*http.Response, blind.ErrorBody) {
		req, _ := http.NewRequest(http.MethodPost, client.Base+"evaluate", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb blind.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp, eb
	}
	zero := strings.Repeat("A", 43) + "="
	cases := []struct {
		name, body, token string
		status            int
		reason            blind.Reason
	}{
		{"not JSON", "{", "tok-b", 400, blind.ReasonLength},
		{"unknown field", `{"epoch":1,"elements":[],"x":1}`, "tok-b", 400, blind.ReasonLength},
		{"identity", fmt.Sprintf(`{"epoch":%d,"elements":["%s"]}`, epoch, zero), "tok-b", 400, blind.ReasonIdentity},
		{"short element", fmt.Sprintf(`{"epoch":%d,"elements":["AAAA"]}`, epoch), "tok-b", 400, blind.ReasonLength},
		{"oversized", fmt.Sprintf(`{"epoch":%d,"elements":["%s","%s","%s","%s","%s"]}`, epoch, zero, zero, zero, zero, zero), "tok-b", 413, blind.ReasonBatchTooLarge},
		{"body far too long", `{"epoch":1,"elements":["` + strings.Repeat("A", 10000) + `"]}`, "tok-b", 413, blind.ReasonBatchTooLarge},
		{"expired epoch", fmt.Sprintf(`{"epoch":%d,"elements":["%s"]}`, epoch-3, zero), "tok-b", 409, blind.ReasonEpochExpired},
		{"no access", `{}`, "tok-x", 403, blind.ReasonNoAccess},
	}
	for _, c := range cases {
		resp, eb := post(c.body, c.token)
		if resp.StatusCode != c.status || eb.Reason != c.reason || eb.Message == "" {
			t.Errorf("%s: %d %+v, want %d %s", c.name, resp.StatusCode, eb, c.status, c.reason)
		}
	}
}
