package feed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// assertChecked fails unless o's envelope is what stix.Decode reads from
// its JSON and stix.Validate accepts the JSON, when the importer vouched
// for it (o.Checked set).
func assertChecked(t testing.TB, o Object) {
	t.Helper()
	if o.Checked == nil {
		return
	}
	d, err := stix.Decode(o.Raw)
	if err != nil {
		t.Fatalf("checked object does not decode: %v\n%s", err, o.Raw)
	}
	if err := stix.Validate(d); err != nil {
		t.Fatalf("checked object is not valid: %v\n%s", err, o.Raw)
	}
	if !reflect.DeepEqual(d, o.Checked) {
		t.Fatalf("checked envelope differs from the decoded one:\nchecked %+v\ndecoded %+v", o.Checked, d)
	}
	if !bytes.Equal(o.Checked.Raw, o.Raw) {
		t.Fatalf("checked envelope's JSON is not the object's")
	}
}

// TestCheckedAllSharedData imports every blocklist and MISP event of the
// shared data, taking the settled objects after each input, then the
// rest with TakeChecked from one importer and TakeObjects from another:
// the same JSON in the same order, and every indicator vouched for, with
// the envelope stix.Decode reads and JSON that stix.Validate accepts.
func TestCheckedAllSharedData(t *testing.T) {
	if testing.Short() {
		t.Skip("imports all shared feeds")
	}
	files := sharedFeedFiles(t)
	a, b := NewImporter(), NewImporter()
	scos, checkedSCOs := 0, 0
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range []*Importer{a, b} {
			if _, err := im.Import(bytes.NewReader(d), filepath.Base(f), Options{Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		got, want := a.TakeSettledChecked(), b.TakeSettled()
		if len(got) != len(want) {
			t.Fatalf("TakeSettledChecked gave %d objects, TakeSettled %d", len(got), len(want))
		}
		for i, o := range got {
			if !bytes.Equal(o.Raw, want[i]) {
				t.Fatalf("object differs:\nTakeSettledChecked %s\nTakeSettled        %s", o.Raw, want[i])
			}
			if d, err := stix.Decode(o.Raw); err == nil && scoTypes[d.Type] != 0 {
				scos++
			}
			if o.Checked != nil {
				checkedSCOs++
				assertChecked(t, o)
			}
		}
	}
	// Observables with a value JSON must escape are left to be decoded.
	if scos < 300000 || checkedSCOs < scos*99/100 {
		t.Fatalf("%d of %d observables checked", checkedSCOs, scos)
	}
	indicators, checked := 0, 0
	for {
		got, want := a.TakeChecked(100000), b.TakeObjects(100000)
		if len(got) != len(want) {
			t.Fatalf("TakeChecked gave %d objects, TakeObjects %d", len(got), len(want))
		}
		if len(got) == 0 {
			break
		}
		for i, o := range got {
			if !bytes.Equal(o.Raw, want[i]) {
				t.Fatalf("object differs:\nTakeChecked %s\nTakeObjects %s", o.Raw, want[i])
			}
			if bytes.HasPrefix(o.Raw, []byte(`{"type":"indicator"`)) {
				indicators++
			}
			if o.Checked != nil {
				checked++
				assertChecked(t, o)
			}
		}
	}
	if indicators < 400000 || checked != indicators {
		t.Fatalf("%d of %d indicators checked", checked, indicators)
	}
}

// validIndicator returns an indicator as batch.add renders them.
func validIndicator() *indicator {
	conf := 80
	return &indicator{Type: "indicator", SpecVersion: "2.1", ID: IndicatorID(observable.IPv4, "192.0.2.1"),
		Created: "2026-01-02T03:04:05.000Z", Modified: "2026-01-02T03:04:05.000Z", Name: "192.0.2.1",
		IndicatorTypes: malicious, Pattern: Pattern(observable.IPv4, "192.0.2.1"), PatternType: "stix", PatternVersion: "2.1",
		ValidFrom: "2026-01-02T03:04:05.000Z", ValidUntil: "2026-02-02T03:04:05.000Z", Confidence: &conf,
		Labels: []string{"botnet"}, ExternalRefs: []ExtRef{{SourceName: "feed", URL: "https://example.org/"}},
		MarkingRefs:  []string{stix.TLPGreen.MarkingID()},
		Warninglists: []string{"list"}, Country: "DE"}
}

// TestCheckedRefuses: an indicator the importer cannot vouch for is left
// to be decoded and validated, and each such case here is one
// stix.Validate refuses (or, for kill_chain_phases, one checked does not
// model).
func TestCheckedRefuses(t *testing.T) {
	var ts parsedTimes
	if _, ok := validIndicator().checked(validIndicator().marshal(), &ts); !ok {
		t.Fatal("a valid indicator was not checked")
	}
	for _, c := range []struct {
		name    string
		mutate  func(*indicator)
		invalid bool // stix.Validate refuses it
	}{
		{"confidence above 100", func(in *indicator) { c := 101; in.Confidence = &c }, true},
		{"created_by_ref not an identity", func(in *indicator) { in.CreatedByRef = "malware--" + in.ID[len("indicator--"):] }, true},
		{"created_by_ref not a UUID", func(in *indicator) { in.CreatedByRef = "identity--{6ba7b810-9dad-11d1-80b4-00c04fd430c8}" }, true},
		{"created_by_ref in capitals", func(in *indicator) { in.CreatedByRef = "identity--6BA7B810-9DAD-11D1-80B4-00C04FD430C8" }, false},
		{"marking not a marking-definition", func(in *indicator) { in.MarkingRefs = []string{"identity--6ba7b810-9dad-11d1-80b4-00c04fd430c8"} }, true},
		{"created not to the millisecond", func(in *indicator) { in.Created = "2026-01-02T03:04:05Z" }, true},
		{"modified before created", func(in *indicator) { in.Modified = "2025-01-02T03:04:05.000Z" }, true},
		{"valid_until not after valid_from", func(in *indicator) { in.ValidUntil = in.ValidFrom }, true},
		{"valid_from not a timestamp", func(in *indicator) { in.ValidFrom = "yesterday" }, true},
		{"year 10000", func(in *indicator) { in.ValidUntil = "10000-01-01T00:00:00.000Z" }, true},
		{"bad hash", func(in *indicator) { in.Pattern = "[file:hashes.MD5 = 'abc']" }, true},
		{"bad escape", func(in *indicator) { in.Pattern = `[url:value = 'a\b']` }, true},
		{"unterminated", func(in *indicator) { in.Pattern = `[url:value = 'a\']` }, true},
		{"empty pattern", func(in *indicator) { in.Pattern = " " }, true},
		{"pattern_version 2.0", func(in *indicator) { in.PatternVersion = "2.0" }, false},
		{"kill_chain_phases", func(in *indicator) {
			in.KillChainPhases = json.RawMessage(`[{"kill_chain_name":"k","phase_name":"p"}]`)
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := validIndicator()
			c.mutate(in)
			raw := in.marshal()
			if _, ok := in.checked(raw, &ts); ok {
				t.Fatalf("checked %s", raw)
			}
			d, err := stix.Decode(raw)
			if err == nil {
				err = stix.Validate(d)
			}
			if c.invalid && err == nil {
				t.Fatalf("stix.Validate accepts %s", raw)
			}
		})
	}
}

// FuzzChecked renders indicators of fuzzed values and times through
// batch.add, as an import does: whatever the importer vouches for must
// decode to its envelope and validate; and a pattern simplePattern
// accepts must parse.
func FuzzChecked(f *testing.F) {
	f.Add(0, "192.0.2.1", int64(0), int64(3600), 50, "tlp:green")
	f.Add(2, "ex'am\\ple.org", int64(-1e9), int64(0), 0, "")
	f.Add(4, `http://a/'\'`, int64(253402300799), int64(1), 101, "misp:x")
	f.Add(7, "d41d8cd98f00b204e9800998ecf8427e", int64(0), int64(-5), -1, "tlp:red")
	f.Add(11, "/wp-content/x.php", int64(1e12), int64(1e12), 100, "")
	kinds := []observable.Kind{observable.IPv4, observable.IPv6, observable.Domain, observable.CIDR4, observable.URL,
		observable.Email, observable.CIDR6, observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512, URLPath}
	f.Fuzz(func(t *testing.T, kind int, value string, from, span int64, conf int, label string) {
		if kind < 0 {
			kind = -kind
		}
		k := kinds[kind%len(kinds)]
		p := Pattern(k, value)
		if simplePattern(p) {
			if _, err := pattern.ParseVersion(p, pattern.Version21); err != nil {
				t.Fatalf("simplePattern accepts %q: %v", p, err)
			}
		}
		if simplePattern(value) {
			if _, err := pattern.ParseVersion(value, pattern.Version21); err != nil {
				t.Fatalf("simplePattern accepts %q: %v", value, err)
			}
		}
		im := NewImporter()
		b := im.newBatch("fuzz", Options{Now: now, Confidence: conf, TLP: nil})
		vf := time.Unix(from, 0).UTC()
		b.add(obs{kind: k, value: value, indicator: true, validFrom: vf, validUntil: vf.Add(time.Duration(span) * time.Second),
			confidence: conf, labels: []string{label}, markings: []string{label}, description: label,
			ref: ExtRef{ExternalID: label}})
		for _, o := range im.TakeChecked(10) {
			assertChecked(t, o)
		}
	})
}

// FuzzCheckedSCO: an observable SCO writes, or any JSON, that checkedSCO
// vouches for decodes to its envelope and validates.
func FuzzCheckedSCO(f *testing.F) {
	for _, c := range []struct {
		k observable.Kind
		v string
	}{{observable.IPv4, "192.0.2.1"}, {observable.CIDR6, "2001:db8::/32"}, {observable.IPv6, "fe80::1%eth0"},
		{observable.MD5, "d41d8cd98f00b204e9800998ecf8427e"}, {observable.URL, "http://a/<b>"}, {observable.Domain, "example.org"}} {
		_, raw := SCO(c.k, c.v)
		f.Add(0, "", []byte(raw))
		f.Add(1, c.v, []byte(nil))
	}
	f.Add(0, "", []byte(`{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff0d3a5d-4d3c-5b1e-9a6b-1d1c0a6d7a9e","value":"::1"}`))
	f.Add(0, "", []byte(`{"type":"file","spec_version":"2.1","id":"file--ff0d3a5d-4d3c-5b1e-9a6b-1d1c0a6d7a9e","hashes":{"MD5":"xyz"}}`))
	kinds := []observable.Kind{observable.IPv4, observable.IPv6, observable.Domain, observable.CIDR4, observable.URL,
		observable.Email, observable.CIDR6, observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512}
	f.Fuzz(func(t *testing.T, kind int, value string, raw []byte) {
		if kind < 0 {
			kind = -kind
		}
		if value != "" {
			_, raw = SCO(kinds[kind%len(kinds)], value)
		}
		o := Object{Raw: raw}
		if env, ok := checkedSCO(raw); ok {
			o.Checked = &env
		}
		assertChecked(t, o)
	})
}

// TestSettleEvery: a list read with SettleEvery hands its settled objects
// on in pieces while it is read, and those pieces, with what is taken
// after it, are the objects an importer without it settles, in order.
func TestSettleEvery(t *testing.T) {
	var list bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&list, "198.51.%d.%d\n", i/250, i%250)
		fmt.Fprintf(&list, "host%d.example.org\n", i)
	}
	for _, n := range []int{1, 100, 700, 5000} {
		a, b := NewImporter(), NewImporter()
		var got []json.RawMessage
		calls := 0
		a.SettleEvery(n, func() {
			calls++
			got = append(got, a.TakeSettled()...)
		})
		for _, im := range []*Importer{a, b} {
			if _, err := im.Import(bytes.NewReader(list.Bytes()), "list.txt", Options{Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		got = append(got, a.TakeSettled()...)
		want := b.TakeSettled()
		if len(got) != len(want) || len(want) != 2000 {
			t.Fatalf("every %d: %d objects settled in pieces, %d whole", n, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("every %d: object %d differs:\n%s\n%s", n, i, got[i], want[i])
			}
		}
		// Each line adds an observable and an indicator.
		if wantCalls := 4000 / max(n, 2); n < 4000 && (calls < wantCalls-1 || calls > wantCalls+1) {
			t.Fatalf("every %d: %d calls, want about %d", n, calls, wantCalls)
		}
		if n == 5000 && calls != 0 {
			t.Fatalf("every 5000: %d calls", calls)
		}
		ga, gb := a.TakeChecked(5000), b.TakeObjects(5000)
		if len(ga) != len(gb) || len(gb) != 2000 {
			t.Fatalf("every %d: %d indicators, want %d", n, len(ga), len(gb))
		}
	}
}
