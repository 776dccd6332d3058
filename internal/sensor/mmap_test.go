package sensor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestMappedEqualsRead holds the mapped reading of a regular file to the
// reading of the same bytes through a reader: the same lines, observables,
// line numbers, statistics and bad lines, at chunk sizes that cut lines,
// headers and over-long lines anywhere.
func TestMappedEqualsRead(t *testing.T) {
	zeek := "#separator \\x09\n#fields\tts\tid.orig_h\tid.resp_h\n#types\ttime\taddr\taddr\n"
	var zb strings.Builder
	zb.WriteString(zeek)
	for i := range 300 {
		if i == 150 {
			zb.WriteString("#fields\tts\tid.resp_h\tid.orig_h\n")
		}
		fmt.Fprintf(&zb, "1.%d\t10.0.%d.%d\t2001:db8::%x\r\n", i, i/256, i%256, i)
	}
	good := `{"event_type":"flow","src_ip":"192.0.2.7","dest_ip":"198.51.100.1"}`
	huge := `{"event_type":"flow","src_ip":"` + strings.Repeat("9", 3000) + `"}`
	cases := map[string]struct {
		data   string
		format Format
	}{
		"zeek":          {zb.String(), nil},
		"zeek-no-final": {strings.TrimSuffix(zb.String(), "\r\n"), nil},
		"eve-huge":      {good + "\n" + huge + "\n" + good + "\n" + huge + "\n" + good, nil},
		"eve-huge-last": {good + "\n" + good + "\n" + huge, EVE},
		"long-split":    {strings.Repeat("x", 600) + "\n" + good + "\n" + good + "\n", EVE},
		"unknown":       {"hello\nworld\n", nil},
	}
	dir := t.TempDir()
	for name, tc := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS == "linux" {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			m := mapFile(f)
			if m == nil {
				t.Fatalf("%s: not mapped", name)
			}
			m.release()
			f.Close()
		}
		for _, cs := range []int{256, 512, 1000, 4096, 1 << 20} {
			for _, w := range []int{1, 2} {
				opts := Options{Format: tc.format, ChunkSize: cs, MaxLineSize: 512, Workers: w}
				mapped, mst, merr := scanAll(t, []Input{fileInput(path)}, opts)
				read, rst, rerr := scanAll(t, []Input{bytesInput(path, []byte(tc.data))}, opts)
				// Workers report bad lines as they meet them: with two,
				// in either order.
				for _, st := range []*Stats{&mst, &rst} {
					slices.SortFunc(st.BadLines, func(a, b BadLine) int { return cmp.Compare(a.Line, b.Line) })
				}
				if fmt.Sprint(merr) != fmt.Sprint(rerr) {
					t.Errorf("%s chunk %d: mapped error %v, read error %v", name, cs, merr, rerr)
				}
				if !reflect.DeepEqual(mapped, read) || fmt.Sprint(mst) != fmt.Sprint(rst) {
					t.Errorf("%s chunk %d workers %d: mapped\n%v %+v\nread\n%v %+v", name, cs, w, mapped, mst, read, rst)
				}
			}
		}
	}
}

// truncator truncates its file at the first line it is given, as a log
// rotation by copy and truncation would while the file is read.
type truncator struct {
	once    *sync.Once
	path    string
	t       *testing.T
	dropped *int
	mu      *sync.Mutex
}

func (h truncator) Line(*Chunk, int64, []byte, []Obs, Parser) {
	h.once.Do(func() {
		if err := os.Truncate(h.path, 0); err != nil {
			h.t.Error(err)
		}
	})
}

func (truncator) ChunkDone(*Chunk) {}
func (truncator) Flush()           {}
func (h truncator) Drop() {
	h.mu.Lock()
	*h.dropped++
	h.mu.Unlock()
}

// TestTruncatedWhileMapped: a file that shrinks while it is read through
// its mapping ends with ErrTruncated, not with the process killed by
// SIGBUS, and the inputs after it are still read.
func TestTruncatedWhileMapped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "eve.json")
	var b strings.Builder
	for i := range 200000 {
		fmt.Fprintf(&b, `{"event_type":"flow","src_ip":"10.%d.%d.%d"}`+"\n", i>>16, (i>>8)&255, i&255)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"event_type":"flow","src_ip":"192.0.2.1"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dropped := 0
	var once sync.Once
	st, err := Scan(context.Background(), []Input{fileInput(path), fileInput(other)}, Options{ChunkSize: 64 << 10},
		func(int) Handler { return truncator{once: &once, path: path, t: t, dropped: &dropped, mu: &mu} })
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("error %v, want ErrTruncated", err)
	}
	if st.Inputs != 2 || st.Lines >= 200001 {
		t.Errorf("stats %+v: want both inputs, fewer lines than written", st)
	}
	t.Logf("%v (%d chunks dropped, %d lines)", err, dropped, st.Lines)
}
