package sqlite

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
)

// TestDecodeRoles checks decodeRoles against encoding/json on the lists
// encodeRoles writes and on lists only encoding/json reads (spaces,
// escapes) or refuses.
func TestDecodeRoles(t *testing.T) {
	for _, in := range []string{
		`[]`, `null`, `["admin"]`, `["admin","analyst","partner"]`, `[""]`,
		`[ "admin" ]`, `["a\"b"]`, `["\u00e9"]`, `["é"]`,
		`[`, `]`, `["a",]`, `["a"`, `["a""b"]`, `[1]`, ``, `["a",,"b"]`, `[,"a"]`,
	} {
		var want []entente.Role
		wantErr := json.Unmarshal([]byte(in), &want)
		if len(want) == 0 {
			want = nil
		}
		got, err := decodeRoles([]byte(in))
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, want %v", in, err, wantErr)
			continue
		}
		if err == nil {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-encoding/json +decodeRoles):\n%s", in, diff)
			}
		}
	}
}
