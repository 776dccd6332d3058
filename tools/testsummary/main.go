// Command testsummary reads the output of "go test -json" on stdin and
// writes what a person needs from it: each package's result line, the
// whole output of every failed test, package and build, and, at the end,
// every skipped test with the reason it gave. It exits 1 when anything
// failed (or nothing ran), so CI can run
//
//	go test -json ./... | go run ./tools/testsummary
//
// and see which tests could not run here and why, which "go test ./..."
// hides.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	if !summarize(os.Stdin, os.Stdout) {
		os.Exit(1)
	}
}

// event is one line of "go test -json": a test event (test2json) or a
// build event (go build -json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	Elapsed     float64
	ImportPath  string // build events
	FailedBuild string
}

// skip is one skipped test and its reason.
type skip struct {
	pkg, test, reason string
}

type key struct{ pkg, test string }

// summarize reads a "go test -json" stream from r and writes the summary
// to w; it reports whether everything that ran passed.
func summarize(r io.Reader, w io.Writer) bool {
	out := map[key]*strings.Builder{}
	build := map[string]*strings.Builder{}
	var skips []skip
	passed, failed, events := 0, 0, 0
	ok := true
	buf := func(m map[key]*strings.Builder, k key) *strings.Builder {
		b := m[k]
		if b == nil {
			b = &strings.Builder{}
			m[k] = b
		}
		return b
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event (go vet or the go command itself): as it is.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		events++
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			b := build[e.ImportPath]
			if b == nil {
				b = &strings.Builder{}
				build[e.ImportPath] = b
			}
			b.WriteString(e.Output)
		case "build-fail":
			ok = false
			fmt.Fprintf(w, "BUILD FAILED %s\n%s", e.ImportPath, build[e.ImportPath])
		case "output":
			buf(out, k).WriteString(e.Output)
		case "pass":
			if e.Test == "" {
				fmt.Fprint(w, resultLine(out[k], "ok"))
			} else {
				passed++
			}
			delete(out, k)
		case "skip":
			if e.Test == "" {
				fmt.Fprint(w, resultLine(out[k], "?"))
			} else {
				skips = append(skips, skip{e.Package, e.Test, reason(out[k])})
			}
			delete(out, k)
		case "fail":
			ok = false
			if e.Test != "" {
				failed++
				fmt.Fprintf(w, "--- FAIL %s %s\n%s", e.Package, e.Test, indent(out[k]))
			} else {
				// The package's own output: the failure lines, a panic,
				// a timeout, a build failure.
				fmt.Fprintf(w, "FAIL %s\n%s", e.Package, indent(out[k]))
			}
			delete(out, k)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "testsummary: reading the test events: %v\n", err)
		ok = false
	}
	if events == 0 {
		fmt.Fprintln(w, "testsummary: no test events on stdin (want the output of go test -json)")
		return false
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	if len(skips) > 0 {
		fmt.Fprintf(w, "\n%d tests skipped, and why:\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(w, "  SKIP %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
	fmt.Fprintf(w, "\n%d tests passed, %d failed, %d skipped\n", passed, failed, len(skips))
	return ok
}

// resultLine returns the package's result line ("ok  \tpkg\t1.2s") from
// its output, or nothing.
func resultLine(b *strings.Builder, prefix string) string {
	if b == nil {
		return ""
	}
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if strings.HasPrefix(l, prefix+" ") || strings.HasPrefix(l, prefix+"\t") {
			return l
		}
	}
	return ""
}

// reason is what a skipped test said: its output but the framing lines.
func reason(b *strings.Builder) string {
	if b == nil {
		return "(no reason given)"
	}
	var parts []string
	for _, l := range strings.Split(b.String(), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}

func indent(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	var s strings.Builder
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if l != "" {
			s.WriteString("    " + l)
		}
	}
	if s.Len() > 0 && !strings.HasSuffix(s.String(), "\n") {
		s.WriteString("\n")
	}
	return s.String()
}
