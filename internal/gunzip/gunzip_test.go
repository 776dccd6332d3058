package gunzip

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bomb returns members gzip members of size zero bytes each, concatenated.
func bomb(t testing.TB, members int, size int) []byte {
	one := gz(t, make([]byte, size))
	return bytes.Repeat(one, members)
}

func readAll(t *testing.T, in []byte, lim Limits) ([]byte, *Reader, error) {
	t.Helper()
	r, err := Open(bytes.NewReader(in), "in.gz", lim)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	return out, r, err
}

func TestOpen(t *testing.T) {
	text := []byte(strings.Repeat("indicator--0f5a 198.51.100.7 evil.example\n", 2000))
	whole := gz(t, text)
	lying := append([]byte{}, whole...)
	binary.LittleEndian.PutUint32(lying[len(lying)-4:], 0xffffffff) // claims 4 GiB
	twoMembers := append(gz(t, text[:1000]), gz(t, text[1000:])...)

	tests := []struct {
		name    string
		in      []byte
		lim     Limits
		want    []byte // when no error
		wantErr string
		limit   bool // the error is a *LimitError
	}{
		{name: "plain", in: text, want: text},
		{name: "empty", in: nil, want: []byte{}},
		{name: "one byte", in: []byte{0x1f}, want: []byte{0x1f}},
		{name: "gzip", in: whole, want: text},
		{name: "two members", in: twoMembers, want: text},
		{name: "truncated", in: whole[:len(whole)/2], wantErr: "in.gz: gzip stream broken after"},
		{name: "truncated in the trailer", in: whole[:len(whole)-3], wantErr: "unexpected EOF"},
		{name: "truncated in the header", in: whole[:5], wantErr: "in.gz: gzip header: unexpected EOF"},
		{name: "lying size trailer", in: lying, wantErr: "invalid checksum"},
		{name: "over the total", in: whole, lim: Limits{MaxSize: 1000}, wantErr: "decompresses to more than 1000 bytes", limit: true},
		{name: "exactly the total", in: whole, lim: Limits{MaxSize: int64(len(text))}, want: text},
		{name: "ratio", in: bomb(t, 64, 1<<20), wantErr: "refused as a gzip bomb", limit: true},
		{name: "ratio below the floor", in: bomb(t, 4, 1<<10), lim: Limits{RatioFloor: 1 << 20}, want: make([]byte, 4<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, r, err := readAll(t, tt.in, tt.lim)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				var le *LimitError
				if errors.As(err, &le) != tt.limit {
					t.Fatalf("limit error %v: got %T", tt.limit, err)
				}
				if tt.lim.MaxSize > 0 && int64(len(out)) > tt.lim.MaxSize {
					t.Fatalf("read %d bytes past the %d limit", len(out), tt.lim.MaxSize)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.want) {
				t.Fatalf("got %d bytes, want %d", len(out), len(tt.want))
			}
			if r.Compressed != Magic(tt.in) {
				t.Fatalf("Compressed %v for %q", r.Compressed, tt.in[:min(len(tt.in), 4)])
			}
		})
	}
}

// TestBombStopsEarly checks that a multi-member bomb (4 MB that inflate to
// 4 GiB, as in issue 16) is refused after little output.
func TestBombStopsEarly(t *testing.T) {
	in := bomb(t, 512, 8<<20) // 512 members of 8 MiB of zeros: 4 GiB
	if len(in) > 8<<20 {
		t.Fatalf("bomb is %d bytes", len(in))
	}
	r, err := Open(bytes.NewReader(in), "bomb.gz", Limits{MaxSize: 8 << 30})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	var le *LimitError
	if !errors.As(err, &le) || le.Ratio != DefaultMaxRatio {
		t.Fatalf("got %v after %d bytes, want the ratio limit", err, n)
	}
	if n > 64<<20 {
		t.Fatalf("read %d bytes before refusing", n)
	}
}

// TestRealData reads every gzip file of the shared data: real inputs stay
// well within the default ratio.
func TestRealData(t *testing.T) {
	for _, p := range []string{"attack/enterprise-attack-18.1.json.gz", "logs/zeek/wrccdc-2018-03-24/tsv/syslog.log.gz", "logs/suricata/slips-test6-malicious/eve.json.gz"} {
		path := testutil.SharedData(t, strings.Split(p, "/")...)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(f, p, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		f.Close()
		if err != nil || !r.Compressed || n != r.Out() || n == 0 {
			t.Fatalf("%s: %d bytes, %v", p, n, err)
		}
	}
}

// TestTruncatedRealBundle is issue 16's first case: a 3 MB piece of the
// ATT&CK bundle. It must fail at once, naming the file.
func TestTruncatedRealBundle(t *testing.T) {
	data, err := os.ReadFile(testutil.SharedData(t, "attack", "enterprise-attack-18.1.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := readAll(t, data[:3<<20], Limits{MaxSize: 1 << 30})
	if err == nil || !strings.Contains(err.Error(), "in.gz: gzip stream broken") || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("got %v", err)
	}
	if len(out) > 30<<20 {
		t.Fatalf("read %d bytes of a 3 MB piece", len(out))
	}
}

func FuzzOpen(f *testing.F) {
	f.Add([]byte("198.51.100.7\n"))
	f.Add(gz(f, []byte("[ipv4-addr:value = '198.51.100.7']")))
	f.Add(bomb(f, 2, 4096))
	f.Fuzz(func(t *testing.T, in []byte) {
		lim := Limits{MaxSize: 1 << 20, RatioFloor: 1 << 10}
		r, err := Open(bytes.NewReader(in), "fuzz", lim)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, r)
		if r.Compressed && n > lim.MaxSize {
			t.Fatalf("%d bytes past the limit", n)
		}
		if !r.Compressed && n != int64(len(in)) {
			t.Fatalf("plain input: %d of %d bytes", n, len(in))
		}
	})
}
