package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/warninglist"
)

// safetyNet builds the node's safety net from cfg.Safety. cfgFile is the
// configuration file cfg was read from ("" when none): relative paths are
// taken from its directory, and the constituency's rules cite its lines.
// A malformed allowlist, constituency or AS prefix file is an error
// naming the file and the line at fault.
func safetyNet(cfg config.Config, cfgFile string) (*safety.Net, error) {
	s := cfg.Safety
	var text, base, where string
	if cfgFile != "" {
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			return nil, fmt.Errorf("safety net: %w", err)
		}
		text, base, where = string(b), filepath.Dir(cfgFile), filepath.Base(cfgFile)
	}
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) || base == "" {
			return p
		}
		return filepath.Join(base, p)
	}
	nc := safety.Config{IANA: s.IANA, Networks: safety.Mode(s.Networks), WidestIPv4: s.WidestIPv4, WidestIPv6: s.WidestIPv6,
		WidestSetting: [2]string{"safety.widest_ipv4", "safety.widest_ipv6"}}
	if s.ShippedWarninglists {
		ls, err := safety.ShippedWarninglists()
		if err != nil {
			return nil, err
		}
		nc.Warninglists = ls
	}
	if s.Warninglists != "" {
		ls, err := warninglist.LoadLists(path(s.Warninglists))
		if err != nil {
			return nil, fmt.Errorf("safety.warninglists: %w", err)
		}
		nc.Warninglists = append(nc.Warninglists, ls...)
	}
	for _, l := range []struct {
		key    string
		values []string
	}{{"constituency_networks", s.ConstituencyNetworks}, {"constituency_domains", s.ConstituencyDomains}, {"constituency_asns", s.ConstituencyASNs}} {
		for i, v := range l.values {
			w := fmt.Sprintf("configuration safety.%s entry %d", l.key, i+1)
			if line := config.EntryLine(text, "safety", l.key, v); line > 0 {
				w = fmt.Sprintf("config %s line %d", where, line)
			}
			nc.Constituency = append(nc.Constituency, safety.Entry{Value: v, Where: w})
		}
	}
	readList := func(key, file string) ([]safety.Entry, error) {
		f, err := os.Open(path(file))
		if err != nil {
			return nil, fmt.Errorf("safety.%s: %w", key, err)
		}
		defer f.Close()
		es, err := safety.ParseList(filepath.Base(file), f)
		if err != nil {
			return nil, fmt.Errorf("safety.%s: %w", key, err)
		}
		return es, nil
	}
	if s.ConstituencyFile != "" {
		es, err := readList("constituency_file", s.ConstituencyFile)
		if err != nil {
			return nil, err
		}
		nc.Constituency = append(nc.Constituency, es...)
	}
	if s.ASNPrefixes != "" {
		f, err := os.Open(path(s.ASNPrefixes))
		if err != nil {
			return nil, fmt.Errorf("safety.asn_prefixes: %w", err)
		}
		nc.ASNPrefixes, err = safety.ParseASNPrefixes(filepath.Base(s.ASNPrefixes), f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("safety.asn_prefixes: %w", err)
		}
		nc.ASNSource = filepath.Base(s.ASNPrefixes)
	}
	if s.Allowlist != "" {
		es, err := readList("allowlist", s.Allowlist)
		if err != nil {
			return nil, err
		}
		nc.Allowlist = es
	}
	n, err := safety.New(nc)
	if err != nil {
		return nil, fmt.Errorf("safety net: %w", err)
	}
	return n, nil
}
