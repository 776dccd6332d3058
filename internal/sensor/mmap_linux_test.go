//go:build linux

package sensor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestDropPagesKeepsDataLeavesMemory checks dropPages: the pages wholly
// within a done chunk leave the process (its mapping's resident size, from
// /proc/self/smaps, falls), and reading them again still gives the file's
// bytes.
func TestDropPagesKeepsDataLeavesMemory(t *testing.T) {
	want := bytes.Repeat([]byte("1.5\t192.0.2.1\t198.51.100.7\n"), 40000) // ~1 MiB
	path := filepath.Join(t.TempDir(), "conn.log")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := mapFile(f)
	if m == nil {
		t.Fatal("a regular file was not mapped")
	}
	defer m.release()
	if n := bytes.Count(m.data, []byte{'\n'}); n != 40000 { // faults every page in
		t.Fatalf("%d lines mapped, want 40000", n)
	}
	before := mappedRSS(t, m.data)
	if before < 512 {
		t.Fatalf("mapping resident %d KiB after reading it all, want about %d", before, len(want)>>10)
	}
	// A chunk that starts and ends inside pages: only the pages wholly
	// within it go.
	dropPages(m.data[100 : len(m.data)-100])
	after := mappedRSS(t, m.data)
	if after > 16 {
		t.Errorf("mapping resident %d KiB after dropping its pages, %d before", after, before)
	}
	if !bytes.Equal(m.data, want) {
		t.Error("the mapping's bytes changed after dropping its pages")
	}
	dropPages(nil)
	dropPages(m.data[10:20]) // within one page: nothing to drop
}

// mappedRSS returns the resident KiB of the mapping that starts at data,
// from /proc/self/smaps.
func mappedRSS(t *testing.T, data []byte) int {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(unsafe.SliceData(data))))
	in := false
	for _, line := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && !strings.HasSuffix(f[0], ":") {
			// A mapping's first line: "start-end perms offset ...".
			in = strings.HasPrefix(f[0], start)
			continue
		}
		if in && len(f) > 1 && f[0] == "Rss:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("smaps: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no mapping at %s in /proc/self/smaps", start)
	return 0
}
