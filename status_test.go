package entente

import (
	"encoding/json"
	"testing"
)

// TestStatusAppendJSON checks that AppendJSON writes what json.Marshal
// writes, for statuses with and without each optional member and with
// strings that need escapes (quotes, HTML, control characters, non-ASCII,
// invalid UTF-8, U+2028).
func TestStatusAppendJSON(t *testing.T) {
	odd := []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\x01", "é ünïcode 日本", "bad \xff utf-8", "sep \u2028 \u2029", "del \x7f"}
	details := func(msg string) []StatusDetail {
		return []StatusDetail{
			{ID: "indicator--8e2e2d2b-17d4-4cbf-938f-000000000001", Version: "2024-01-01T00:00:00.000Z"},
			{ID: "indicator--8e2e2d2b-17d4-4cbf-938f-000000000002", Version: "", Message: msg},
		}
	}
	statuses := []Status{
		{},
		{ID: "2d086da7-4bdc-4f91-900e-d77486753710", Status: StatusPending, RequestTimestamp: "2026-01-01T00:00:00.000000Z", TotalCount: 2, PendingCount: 2, Pendings: details("")},
		{ID: "x", Status: StatusComplete, TotalCount: 4, SuccessCount: 2, Successes: details(""), FailureCount: 2, Failures: details("invalid")},
		{ID: "y", Status: StatusComplete, Successes: []StatusDetail{}, Failures: nil},
	}
	for _, s := range odd {
		statuses = append(statuses, Status{ID: s, Status: s, RequestTimestamp: s, Failures: details(s), Successes: []StatusDetail{{ID: s, Version: s, Message: s}}})
	}
	for i, st := range statuses {
		want, err := json.Marshal(&st)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.AppendJSON([]byte("prefix")); string(got) != "prefix"+string(want) {
			t.Errorf("status %d:\n got %s\nwant prefix%s", i, got, want)
		}
	}
}
