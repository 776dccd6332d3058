package geo

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
	"go4.org/netipx"
)

// MMDB is a Locator backed by a MaxMind-format database (GeoLite2/GeoIP2
// Country or City, or any database whose records carry
// country.iso_code, or a top-level country_code as the ip-location-db
// databases do).
type MMDB struct {
	db *maxminddb.Reader
}

// mmdbRecord is the part of a record that geo reads.
type mmdbRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	CountryCode string `maxminddb:"country_code"`
}

func (r *mmdbRecord) code() string {
	c := r.Country.ISOCode
	if c == "" {
		c = r.CountryCode
	}
	return strings.ToUpper(c)
}

// OpenMMDB opens the .mmdb file at path.
func OpenMMDB(path string) (*MMDB, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open mmdb %s: %w", path, err)
	}
	return &MMDB{db: db}, nil
}

// OpenMMDBBytes opens a database held in memory.
func OpenMMDBBytes(b []byte) (*MMDB, error) {
	db, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("open mmdb: %w", err)
	}
	return &MMDB{db: db}, nil
}

// Close releases the database.
func (m *MMDB) Close() error { return m.db.Close() }

// Lookup returns the country of addr.
func (m *MMDB) Lookup(addr netip.Addr) (string, bool) {
	var rec mmdbRecord
	res := m.db.Lookup(addr.Unmap())
	if !res.Found() {
		return "", false
	}
	if err := res.Decode(&rec); err != nil {
		return "", false
	}
	c := rec.code()
	return c, c != ""
}

// CountryPrefixes walks the whole database and returns the networks of
// the given countries, aggregated.
func (m *MMDB) CountryPrefixes(cc ...string) []netip.Prefix {
	want := map[string]bool{}
	for _, c := range cc {
		want[strings.ToUpper(strings.TrimSpace(c))] = true
	}
	var b netipx.IPSetBuilder
	for res := range m.db.Networks() {
		var rec mmdbRecord
		if res.Decode(&rec) != nil {
			continue
		}
		if want[rec.code()] {
			p := res.Prefix()
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			b.AddPrefix(p)
		}
	}
	set, _ := b.IPSet()
	return set.Prefixes()
}
