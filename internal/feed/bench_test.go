package feed

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
	"github.com/entente-cti/entente/internal/warninglist"
)

// BenchmarkImportAll imports every blocklist in shared/data/blocklists
// and every MISP event in shared/data/misp/events into one Importer and
// renders the merged objects: one op is the whole import.
func BenchmarkImportAll(b *testing.B) { benchImportAll(b, Options{Now: now}) }

// BenchmarkImportAllWarninglists is BenchmarkImportAll with every MISP
// warninglist in shared/data/warninglists checked for every indicator.
func BenchmarkImportAllWarninglists(b *testing.B) {
	wl, err := warninglist.LoadDir(testutil.SharedData(b, "warninglists", "lists"))
	if err != nil {
		b.Fatal(err)
	}
	benchImportAll(b, Options{Now: now, Warninglists: wl})
}

func benchImportAll(b *testing.B, opts Options) {
	dir := testutil.SharedData(b, "blocklists")
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	files = append(files, mispFiles(b)...)
	data := make([][]byte, len(files))
	var size int64
	for i, f := range files {
		var err error
		if data[i], err = os.ReadFile(f); err != nil {
			b.Fatal(err)
		}
		size += int64(len(data[i]))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		im := NewImporter()
		for i, d := range data {
			if _, err := im.Import(bytesReader(d), filepath.Base(files[i]), opts); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
		im.Each(func(raw json.RawMessage) error { n += len(raw); return nil })
		b.ReportMetric(float64(im.Len()), "objects")
	}
}
