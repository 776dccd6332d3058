package safety

import (
	"embed"
	"encoding/csv"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/entente-cti/entente/internal/warninglist"
)

//go:embed data/*.csv data/warninglists/*/list.json
var data embed.FS

// Reachability is what a registry entry's "Globally Reachable" column
// says.
type Reachability string

// The values of the "Globally Reachable" column.
const (
	NotReachable Reachability = "False" // protected
	Reachable    Reachability = "True"  // an exception to an enclosing protected block
	NotDefined   Reachability = "N/A"   // treated as Reachable (TEREDO, 6to4)
	Terminated   Reachability = ""      // a terminated allocation: the enclosing entry decides
)

// RegistryEntry is one block of an IANA registry the net reads.
type RegistryEntry struct {
	// Prefix is the address block.
	Prefix netip.Prefix
	// Name is the registry's name for it ("Private-Use").
	Name string
	// RFC is its reference, as the registry writes it ("RFC 1918").
	RFC string
	// Reach is its "Globally Reachable" column, footnote marks removed.
	Reach Reachability
	// Registry names the registry ("IANA IPv4 Special-Purpose Address
	// Registry").
	Registry string
	// Multicast marks the multicast blocks (from the address-space
	// registries).
	Multicast bool
}

// Protects reports whether the entry itself protects its block.
func (e RegistryEntry) Protects() bool { return e.Multicast || e.Reach == NotReachable }

// exception reports whether the entry carves its block out of an
// enclosing protected one.
func (e RegistryEntry) exception() bool { return e.Reach == Reachable || e.Reach == NotDefined }

// The registries' names, as rules cite them.
const (
	RegistryIPv4      = "IANA IPv4 Special-Purpose Address Registry"
	RegistryIPv6      = "IANA IPv6 Special-Purpose Address Registry"
	RegistryMulticast = "IANA IPv4 and IPv6 Address Space Registries (multicast)"
)

var footnote = regexp.MustCompile(`\s*\[\d+\]`)

var (
	adjacentRefs = regexp.MustCompile(`\]\s*\[`)
	rfcRef       = regexp.MustCompile(`\[RFC\s*(\d+)\]`)
	bracketed    = regexp.MustCompile(`\[([^\]]*)\]`)
)

// cleanRFC turns a registry's reference cell ("[RFC1122], Section
// 3.2.1.3", "[RFC8190]\n [RFC919], Section 7") into text ("RFC 1122,
// Section 3.2.1.3", "RFC 8190, RFC 919, Section 7").
func cleanRFC(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = adjacentRefs.ReplaceAllString(s, "], [")
	s = rfcRef.ReplaceAllString(s, "RFC $1")
	return bracketed.ReplaceAllString(s, "$1")
}

// parseRegistry reads a registry CSV as IANA publishes it.
func parseRegistry(name, registry string, multicast bool, raw []byte) ([]RegistryEntry, error) {
	r := csv.NewReader(strings.NewReader(string(raw)))
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", name, err)
	}
	if len(rows) < 2 || rows[0][0] != "Address Block" || rows[0][1] != "Name" || rows[0][2] != "RFC" {
		return nil, fmt.Errorf("registry %s: not an IANA address registry CSV", name)
	}
	reach := -1
	for i, h := range rows[0] {
		if h == "Globally Reachable" {
			reach = i
		}
	}
	if !multicast && reach < 0 {
		return nil, fmt.Errorf("registry %s: no Globally Reachable column", name)
	}
	var out []RegistryEntry
	for n, row := range rows[1:] {
		e := RegistryEntry{Name: strings.Trim(row[1], `"`), RFC: cleanRFC(row[2]), Registry: registry, Multicast: multicast}
		if reach >= 0 {
			e.Reach = Reachability(strings.TrimSpace(footnote.ReplaceAllString(row[reach], "")))
			switch e.Reach {
			case NotReachable, Reachable, NotDefined, Terminated:
			default:
				return nil, fmt.Errorf("registry %s: row %d: Globally Reachable %q", name, n+2, row[reach])
			}
		}
		for _, b := range strings.Split(footnote.ReplaceAllString(row[0], ""), ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(b))
			if err != nil {
				return nil, fmt.Errorf("registry %s: row %d: %w", name, n+2, err)
			}
			e.Prefix = p.Masked()
			out = append(out, e)
		}
	}
	return out, nil
}

// Registries returns every entry of the embedded registries: IPv4 and
// IPv6 special-purpose, then multicast.
func Registries() ([]RegistryEntry, error) {
	var all []RegistryEntry
	for _, f := range []struct {
		file, registry string
		multicast      bool
	}{
		{"data/iana-ipv4-special-registry-1.csv", RegistryIPv4, false},
		{"data/iana-ipv6-special-registry-1.csv", RegistryIPv6, false},
		{"data/iana-multicast.csv", RegistryMulticast, true},
	} {
		raw, err := data.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", f.file, err)
		}
		es, err := parseRegistry(path.Base(f.file), f.registry, f.multicast, raw)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	return all, nil
}

// ShippedWarninglists returns the MISP warninglists shipped with the node
// (data/warninglists), sorted by directory name.
func ShippedWarninglists() ([]*warninglist.List, error) {
	files, err := fs.Glob(data, "data/warninglists/*/list.json")
	if err != nil {
		return nil, fmt.Errorf("shipped warninglists: %w", err)
	}
	sort.Strings(files)
	out := make([]*warninglist.List, 0, len(files))
	for _, f := range files {
		fh, err := data.Open(f)
		if err != nil {
			return nil, fmt.Errorf("shipped warninglist %s: %w", f, err)
		}
		l, err := warninglist.Parse(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("shipped warninglist %s: %w", f, err)
		}
		out = append(out, l)
	}
	return out, nil
}
