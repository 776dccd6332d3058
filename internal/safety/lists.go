package safety

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest line an allowlist, constituency or AS prefix
// file may hold.
const MaxLine = 16 << 10

// MaxEntries bounds the entries of one list file.
const MaxEntries = 10_000_000

// lines calls fn with each line of r that holds something once comments
// ('#' at the start of a line or after a blank) and surrounding blanks
// are removed, with its number. Errors name name and the line.
func lines(name string, r io.Reader, fn func(line int, text string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	n, entries := 0, 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if n == 1 {
			b = []byte(strings.TrimPrefix(string(b), "\uFEFF"))
		}
		if !utf8.Valid(b) {
			return fmt.Errorf("%s line %d: not UTF-8 text", name, n)
		}
		s := string(b)
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%s line %d: a NUL byte (a binary file?)", name, n)
		}
		if i := commentStart(s); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if entries++; entries > MaxEntries {
			return fmt.Errorf("%s line %d: more than %d entries", name, n, MaxEntries)
		}
		if err := fn(n, s); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s line %d: longer than %d bytes", name, n+1, MaxLine)
		}
		return fmt.Errorf("read %s (after line %d): %w", name, n, err)
	}
	return nil
}

// commentStart returns where a comment starts in s: a '#' at its start or
// after a space or tab; -1 when there is none.
func commentStart(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// ParseList reads an allowlist or constituency file named name: one
// value per line (an address, a network, a domain, a URL, an e-mail
// address, a hash, or in a constituency "AS64500"); blank lines and
// comments ('#' at the start of a line or after a blank) are ignored.
// Each entry records "name line N"; [New] checks the values. An error
// names the file and the line at fault.
func ParseList(name string, r io.Reader) ([]Entry, error) {
	var out []Entry
	err := lines(name, r, func(line int, s string) error {
		if strings.ContainsAny(s, " \t") {
			return fmt.Errorf("%s line %d: %q: one value per line", name, line, s)
		}
		out = append(out, Entry{Value: s, Where: fmt.Sprintf("%s line %d", name, line)})
		return nil
	})
	return out, err
}

// ParseASNPrefixes reads a file named name of the prefixes announced by
// autonomous systems, for constituencies that name theirs: one "ASN
// PREFIX" pair per line ("AS64500 192.0.2.0/24" or "64500,192.0.2.0/24";
// an address stands for itself), blank lines and '#' comments ignored.
// An error names the file and the line at fault.
func ParseASNPrefixes(name string, r io.Reader) (map[uint32][]Entry, error) {
	out := map[uint32][]Entry{}
	err := lines(name, r, func(line int, s string) error {
		f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
		if len(f) != 2 {
			return fmt.Errorf("%s line %d: %q: want an AS number and a prefix", name, line, s)
		}
		a := f[0]
		if len(a) > 2 && strings.EqualFold(a[:2], "AS") {
			a = a[2:]
		}
		asn, err := strconv.ParseUint(a, 10, 32)
		if err != nil {
			return fmt.Errorf("%s line %d: %q is not an AS number", name, line, f[0])
		}
		if _, ok := parseNet(f[1]); !ok {
			return fmt.Errorf("%s line %d: %q is not a network", name, line, f[1])
		}
		out[uint32(asn)] = append(out[uint32(asn)], Entry{Value: f[1], Where: fmt.Sprintf("%s line %d", name, line)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ValidEntry checks one constituency value as written in a configuration
// (a network, an address, a domain, or "AS64500"), without building a
// net: nil when it is one.
func ValidEntry(v string) error {
	v = strings.TrimSpace(v)
	if asnEntry.MatchString(v) {
		if _, err := strconv.ParseUint(v[2:], 10, 32); err != nil {
			return fmt.Errorf("%q is not an AS number", v)
		}
		return nil
	}
	n := &Net{domains: map[string][]int32{}}
	return n.addEntry(RuleConstituency, Entry{Value: v, Where: "configuration"}, false, "")
}
