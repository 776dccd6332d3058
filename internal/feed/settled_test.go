package feed

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
)

// TestTakeSettledAllSharedData imports every blocklist and MISP event of
// the shared data twice: once keeping every object to the end, once
// taking the settled objects after each input. Both must give the same
// objects, byte for byte, each once; nothing taken early may be an
// indicator (the only objects later inputs extend).
func TestTakeSettledAllSharedData(t *testing.T) {
	if testing.Short() {
		t.Skip("imports all shared feeds")
	}
	files := sharedFeedFiles(t)
	data := make([][]byte, len(files))
	for i, f := range files {
		var err error
		if data[i], err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	whole, streamed, taken := NewImporter(), NewImporter(), NewImporter()
	var gotTaken []json.RawMessage
	var got []json.RawMessage
	takes := 0
	for i, d := range data {
		name := filepath.Base(files[i])
		if _, err := whole.Import(bytes.NewReader(d), name, Options{Now: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := streamed.Import(bytes.NewReader(d), name, Options{Now: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := taken.Import(bytes.NewReader(d), name, Options{Now: now}); err != nil {
			t.Fatal(err)
		}
		gotTaken = append(gotTaken, taken.TakeSettled()...)
		taken := streamed.TakeSettled()
		if len(taken) > 0 {
			takes++
		}
		for _, raw := range taken {
			o, err := stix.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if o.Type == "indicator" {
				t.Fatalf("indicator %s taken before the last input", o.ID)
			}
		}
		got = append(got, taken...)
	}
	if again := streamed.TakeSettled(); len(again) != 0 {
		t.Fatalf("a second take returned %d objects", len(again))
	}
	got = append(got, streamed.Objects()...)
	// Every indicator's JSON as json.Marshal writes it.
	for id, in := range whole.ind {
		want, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := in.marshal(); !bytes.Equal(got, want) {
			t.Fatalf("indicator %s:\nappendJSON   %s\njson.Marshal %s", id, got, want)
		}
	}
	want := whole.Objects()
	// The rest taken in batches: the same objects, in the same order
	// (the importer's order, as Objects gives it, after what TakeSettled
	// gave), each once.
	nsettled := len(gotTaken)
	batches := 0
	for {
		b := taken.TakeObjects(50000)
		if len(b) == 0 {
			break
		}
		if len(b) > 50000 {
			t.Fatalf("TakeObjects(50000) returned %d objects", len(b))
		}
		batches++
		gotTaken = append(gotTaken, b...)
	}
	if batches < 2 {
		t.Fatalf("the indicators came in %d batches", batches)
	}
	if len(gotTaken) != len(got) {
		t.Fatalf("taken in batches: %d objects, streamed %d", len(gotTaken), len(got))
	}
	for i := range got {
		if !bytes.Equal(gotTaken[i], got[i]) {
			t.Fatalf("object %d (of %d settled) differs:\ntaken    %s\nstreamed %s", i, nsettled, gotTaken[i], got[i])
		}
	}
	if n := len(taken.Objects()) + len(taken.TakeSettled()) + len(taken.TakeObjects(10)); n != 0 {
		t.Fatalf("after every object was taken, %d more", n)
	}
	if takes < 10 {
		t.Fatalf("only %d inputs settled objects", takes)
	}
	byID := func(objs []json.RawMessage) map[string]json.RawMessage {
		m := make(map[string]json.RawMessage, len(objs))
		for _, raw := range objs {
			o, err := stix.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := m[o.ID]; dup {
				t.Fatalf("object %s appears twice", o.ID)
			}
			m[o.ID] = raw
		}
		return m
	}
	g, w := byID(got), byID(want)
	if len(g) != len(w) || len(w) < 500000 {
		t.Fatalf("streamed %d objects, whole import %d", len(g), len(w))
	}
	for id, raw := range w {
		if !bytes.Equal(g[id], raw) {
			t.Fatalf("object %s differs:\nstreamed %s\nwhole    %s", id, g[id], raw)
		}
	}
	n := 0
	streamed.Each(func(json.RawMessage) error { n++; return nil })
	if n != len(streamed.Objects()) {
		t.Fatalf("Each gave %d objects, Objects %d", n, len(streamed.Objects()))
	}
}

// sharedFeedFiles returns every shared blocklist file and MISP event.
func sharedFeedFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(testutil.SharedData(t, "blocklists"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	return append(files, mispFiles(t)...)
}
