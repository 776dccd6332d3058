package feed

import (
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
)

// The three abuse.ch layouts, a few rows each in the shape abuse.ch
// publishes them (values are documentation addresses and names).
const urlhausCSV = `################################################################
# abuse.ch URLhaus Database Dump (CSV)                         #
################################################################
#
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
"3371458","2025-01-16 10:12:07","http://198.51.100.23:35563/i","online","2025-01-16 10:12:07","malware_download","32-bit,elf,mips,Mozi","https://urlhaus.abuse.ch/url/3371458/","geenensp"
"3371457","2025-01-16 10:11:05","https://EVIL.example/x.exe","offline","","malware_download","None","https://urlhaus.abuse.ch/url/3371457/","anonymous"
"3371456","2025-01-16 10:11:05","ht tp://bad url","offline","","malware_download","None","https://urlhaus.abuse.ch/url/3371456/","anonymous"
"3371455","2025-01-16 10:11:05"
`

const threatfoxCSV = `# ThreatFox IOCs: CSV export
# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias","malware_printable","last_seen_utc","confidence_level","reference","tags","anonymous","reporter"
"2025-01-16 10:00:12", "1359063", "198.51.100.77:443", "ip:port", "botnet_cc", "win.cobalt_strike", "Agentemis,BEACON", "Cobalt Strike", "", "100", "", "c2", "0", "abuse_ch"
"2025-01-16 09:00:00", "1359062", "c2.evil.example", "domain", "botnet_cc", "win.sliver", "None", "Sliver", "", "75", "https://example.org/report", "None", "0", "x"
"2025-01-16 09:00:00", "1359061", "44d88612fea8a8f36de82e1278abb02f", "md5_hash", "payload", "unknown", "None", "Unknown malware", "", "50", "", "None", "0", "x"
"2025-01-16 09:00:00", "1359060", "whatever", "sha3_hash", "payload", "unknown", "None", "Unknown malware", "", "50", "", "None", "0", "x"
`

const feodoCSV = `################################################################
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #
################################################################
# "first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"
"2021-05-16 19:39:52","203.0.113.246","8080","online","2025-01-16","Emotet"
"2022-01-01 00:00:00","not-an-ip","443","offline","2022-01-02","QakBot"
`

func TestCSVLayouts(t *testing.T) {
	tests := []struct {
		name, in, layout string
		want             []string // indicator names
		rejects          []string
		labels           map[string][]string
	}{
		{"urlhaus", urlhausCSV, "", []string{"http://198.51.100.23:35563/i", "https://evil.example/x.exe"}, []string{"u.csv:row 8", "u.csv:row 9"},
			map[string][]string{"http://198.51.100.23:35563/i": {"32-bit", "elf", "mips", "Mozi"}}},
		{"threatfox", threatfoxCSV, "", []string{"198.51.100.77", "c2.evil.example", "44d88612fea8a8f36de82e1278abb02f"}, []string{"u.csv:row 6"},
			map[string][]string{"c2.evil.example": {"Sliver"}}},
		{"feodo", feodoCSV, "", []string{"203.0.113.246"}, []string{"u.csv:row 6"}, map[string][]string{"203.0.113.246": {"Emotet"}}},
		{"forced", "\"2021-05-16 19:39:52\",\"203.0.113.9\",\"8080\",\"online\",\"2025-01-16\",\"Dridex\"\n", "feodo", []string{"203.0.113.9"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Import(strings.NewReader(tt.in), "u.csv", Options{Now: now, Format: FormatCSV, CSV: tt.layout})
			if err != nil {
				t.Fatal(err)
			}
			inds := checkObjects(t, res.Objects)
			var got []string
			for _, raw := range res.Objects {
				for _, in := range inds {
					if strings.Contains(string(raw), `"id":"`+in.ID+`"`) {
						got = append(got, in.Name)
					}
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("indicators %q, want %q", got, tt.want)
			}
			var rej []string
			for _, r := range res.Rejected {
				rej = append(rej, r.Where)
			}
			if strings.Join(rej, " ") != strings.Join(tt.rejects, " ") {
				t.Errorf("rejects %+v, want at %q", res.Rejected, tt.rejects)
			}
			for _, in := range inds {
				if want, ok := tt.labels[in.Name]; ok && strings.Join(in.Labels, ",") != strings.Join(want, ",") {
					t.Errorf("%s labels %q, want %q", in.Name, in.Labels, want)
				}
			}
		})
	}
	// ThreatFox confidence and reference, and first_seen as valid_from.
	res, _ := Import(strings.NewReader(threatfoxCSV), "tf", Options{Now: now})
	inds := checkObjects(t, res.Objects)
	in := inds[IndicatorID(observable.Domain, "c2.evil.example")]
	if in.Confidence == nil || *in.Confidence != 75 || in.ExternalRefs[0].URL != "https://example.org/report" || in.ValidFrom != "2025-01-16T09:00:00.000Z" {
		t.Errorf("threatfox indicator = %+v", in)
	}
	if res.Format != FormatCSV {
		t.Errorf("detected %s, want csv", res.Format)
	}
}

func TestCSVCustom(t *testing.T) {
	in := "indicator;type;seen;note\n192.0.2.5;ip;2024-03-01;x\nexample.net;domain;2024-03-02;y\n;ip;;\n"
	tlp := stix.TLPGreen
	res, err := Import(strings.NewReader(in), "c.csv", Options{Now: now, Format: FormatCSV, CSV: "custom", TLP: &tlp,
		Columns: Columns{Value: "indicator", Kind: "type", FirstSeen: "3", Comma: ';', Header: true}})
	if err != nil {
		t.Fatal(err)
	}
	inds := checkObjects(t, res.Objects)
	if len(inds) != 2 || res.Stats.Rejected != 1 || res.Rejected[0].Where != "c.csv:row 4" {
		t.Errorf("indicators %d, rejects %+v", len(inds), res.Rejected)
	}
	if got := inds[IndicatorID(observable.IPv4, "192.0.2.5")]; got.ValidFrom != "2024-03-01T00:00:00.000Z" || got.MarkingRefs[0] != tlp.MarkingID() {
		t.Errorf("custom row = %+v", got)
	}
	if _, err := Import(strings.NewReader(in), "c.csv", Options{Format: FormatCSV, CSV: "custom", Columns: Columns{Value: "nope", Header: true, Comma: ';'}}); err == nil {
		t.Error("unknown value column: no error")
	}
}

func FuzzCSV(f *testing.F) {
	f.Add(urlhausCSV, "")
	f.Add(threatfoxCSV, "threatfox")
	f.Add(feodoCSV, "feodo")
	f.Add("a,b\n\"x", "")
	f.Fuzz(func(t *testing.T, in, layout string) {
		res, err := Import(strings.NewReader(in), "fuzz.csv", Options{Now: now, Format: FormatCSV, CSV: layout})
		if err != nil {
			return
		}
		if res.Stats.Rejected > res.Stats.Records {
			t.Fatalf("%d rejects for %d records", res.Stats.Rejected, res.Stats.Records)
		}
		for _, raw := range res.Objects {
			if _, err := stix.Decode(raw); err != nil {
				t.Fatalf("invalid object %s", raw)
			}
		}
	})
}

func FuzzPlain(f *testing.F) {
	f.Add("1.2.3.4\n# c\nexample.com CNAME .\n0.0.0.0 a.b\n||x.y^\n")
	f.Add("32.4.3.2.1.rpz-ip CNAME .\n[2001:db8::1]:443\n")
	f.Fuzz(func(t *testing.T, in string) {
		res, err := Import(strings.NewReader(in), "fuzz.txt", Options{Now: now, Format: FormatPlain})
		if err != nil {
			return
		}
		for _, raw := range res.Objects {
			o, err := stix.Decode(raw)
			if err != nil {
				t.Fatalf("invalid object %s", raw)
			}
			if err := stix.Validate(o); err != nil {
				t.Fatalf("%v", err)
			}
		}
	})
}
