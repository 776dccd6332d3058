package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/warninglist"
)

// importList imports a plain list as source into collection.
func importList(t *testing.T, s *node.Service, c *clock, collection, source, list string, opts feed.Options) node.ImportStats {
	t.Helper()
	opts.Source, opts.Now = source, c.now()
	res, err := feed.Import(strings.NewReader(list), source, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.ImportObjects(context.Background(), admin, collection, res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Failures) > 0 {
		t.Fatalf("import %s: refused %v", source, st.Failures)
	}
	return st
}

func initNode(t *testing.T) (*node.Service, *clock) {
	t.Helper()
	s, _, c := newService(t)
	if _, _, err := s.Init(context.Background(), "CERT Test", "DE", ""); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestImportObjectsMergesAcrossRuns(t *testing.T) {
	s, c := initNode(t)
	ctx := context.Background()
	first := importList(t, s, c, node.CollectionIntel, "feed-a", "198.51.100.7\nexample.org\n", feed.Options{})
	if first.Indicators != 2 || first.Stored != first.Objects || first.Merged != 0 {
		t.Fatalf("first import: %+v", first)
	}
	again := importList(t, s, c, node.CollectionIntel, "feed-a", "198.51.100.7\nexample.org\n", feed.Options{})
	if again.Stored != 0 || again.Unchanged != again.Objects {
		t.Fatalf("the same feed again must store nothing: %+v", again)
	}
	c.add(1e9)
	other := importList(t, s, c, node.CollectionIntel, "feed-b", "198.51.100.7\n", feed.Options{})
	if other.Merged != 1 || other.Stored != 1 {
		t.Fatalf("another feed with a stored observable must merge it: %+v", other)
	}
	id := feed.IndicatorID("ipv4", "198.51.100.7")
	page, err := s.Object(ctx, admin, node.CollectionIntel, id, entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ind struct {
		Refs []struct {
			SourceName string `json:"source_name"`
		} `json:"external_references"`
	}
	if err := json.Unmarshal(page.Entries[0].Raw, &ind); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range ind.Refs {
		names = append(names, r.SourceName)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"feed-a", "feed-b"}) {
		t.Fatalf("sources of the merged indicator: %v", names)
	}
	versions, err := s.Versions(ctx, admin, node.CollectionIntel, id, entente.ObjectQuery{})
	if err != nil || len(versions.Entries) != 2 {
		t.Fatalf("versions: %d, %v; want 2", len(versions.Entries), err)
	}
}

func exportBody(t *testing.T, s *node.Service, p entente.Principal, req node.ExportRequest) (string, string) {
	t.Helper()
	res, err := s.Export(context.Background(), p, req)
	if err != nil {
		t.Fatal(err)
	}
	return string(res.Body()), res.ETag
}

func TestExportCachesUntilChange(t *testing.T) {
	s, c := initNode(t)
	importList(t, s, c, node.CollectionIntel, "feed-a", "198.51.100.7\n", feed.Options{})
	req := node.ExportRequest{Format: export.FormatNftables}
	body, etag := exportBody(t, s, admin, req)
	if !strings.Contains(body, "198.51.100.7") || s.ExportRenders() != 1 {
		t.Fatalf("renders %d, body:\n%s", s.ExportRenders(), body)
	}
	body2, etag2 := exportBody(t, s, admin, req)
	if body2 != body || etag2 != etag || s.ExportRenders() != 1 {
		t.Fatalf("an unchanged export must come from the cache: renders %d, etag %s then %s", s.ExportRenders(), etag, etag2)
	}
	importList(t, s, c, node.CollectionIntel, "feed-a", "198.51.100.9\n", feed.Options{})
	body3, etag3 := exportBody(t, s, admin, req)
	if etag3 == etag || !strings.Contains(body3, "198.51.100.9") || s.ExportRenders() != 2 {
		t.Fatalf("an export after an import must be rendered again: renders %d\n%s", s.ExportRenders(), body3)
	}
	if _, err := s.Export(context.Background(), admin, node.ExportRequest{Format: "pdf"}); entente.ErrorCode(err) != entente.EINVALID {
		t.Fatalf("unknown format: %v", err)
	}
}

func TestExportWarninglistsCountriesAndGate(t *testing.T) {
	s, c := initNode(t)
	ctx := context.Background()
	wl := warninglist.New()
	if err := wl.Add(&warninglist.List{Name: "test resolvers", Type: "cidr", Entries: []string{"203.0.113.0/24"}}); err != nil {
		t.Fatal(err)
	}
	st := importList(t, s, c, node.CollectionIntel, "feed-a", "203.0.113.53\n198.51.100.7\n192.0.2.1\n", feed.Options{Warninglists: wl})
	if st.Warninglisted != 1 || st.WarninglistHits["test resolvers"] != 1 {
		t.Fatalf("warninglist hits: %+v", st)
	}
	plain := node.ExportRequest{Format: export.FormatPlain}
	if body, _ := exportBody(t, s, admin, plain); strings.Contains(body, "203.0.113.53") || !strings.Contains(body, "198.51.100.7") {
		t.Fatalf("warninglisted value exported by default:\n%s", body)
	}
	incl := plain
	incl.Filter.IncludeWarninglisted = true
	if body, _ := exportBody(t, s, admin, incl); !strings.Contains(body, "203.0.113.53") {
		t.Fatalf("include-warninglisted lost the value:\n%s", body)
	}

	// Countries need geolocation data.
	byCountry := node.ExportRequest{Format: export.FormatPlain, Filter: export.Filter{Countries: []string{"nl"}}}
	if _, err := s.Export(ctx, admin, byCountry); entente.ErrorCode(err) != entente.EINVALID {
		t.Fatalf("country filter without geo data: %v", err)
	}
	tab, err := geo.LoadCSV(strings.NewReader("198.51.100.0,198.51.100.255,NL\n192.0.2.0,192.0.2.255,FR\n"), "test.csv")
	if err != nil {
		t.Fatal(err)
	}
	s.SetGeo(tab)
	if body, _ := exportBody(t, s, admin, byCountry); !strings.Contains(body, "198.51.100.7") || strings.Contains(body, "192.0.2.1") {
		t.Fatalf("country filter NL:\n%s", body)
	}
	list := node.ExportRequest{Format: export.FormatPlain, Countries: []string{"FR"}, Filter: export.Filter{Sources: []string{"nobody"}}}
	if body, _ := exportBody(t, s, admin, list); strings.TrimSpace(body) != "192.0.2.0/24" {
		t.Fatalf("country blocklist FR: %q", body)
	}

	// A collection partners may not read stays out of their exports.
	if _, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "internal", Title: "Internal",
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}}); err != nil {
		t.Fatal(err)
	}
	importList(t, s, c, "internal", "own-soc", "192.0.2.99\n", feed.Options{})
	if err := s.PutPartner(ctx, admin, policy.Party{ID: partnerB, Name: "B", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partnerB}, Collections: []string{node.CollectionIntel}, MaxTLP: stix.TLPAmber}); err != nil {
		t.Fatal(err)
	}
	_, partner := keyFor(t, s, entente.RolePartner, partnerB)
	_, stranger := keyFor(t, s, entente.RolePartner, partnerC)
	if body, _ := exportBody(t, s, stranger, plain); strings.TrimSpace(body) != "" {
		t.Fatalf("a partner without agreement got:\n%s", body)
	}
	_, analyst := key(t, s, entente.RoleAnalyst)
	if body, _ := exportBody(t, s, analyst, plain); !strings.Contains(body, "192.0.2.99") {
		t.Fatalf("analyst export lacks the internal indicator:\n%s", body)
	}
	if body, _ := exportBody(t, s, partner, plain); strings.Contains(body, "192.0.2.99") || !strings.Contains(body, "198.51.100.7") {
		t.Fatalf("partner export must hold intel but not internal:\n%s", body)
	}
	_, err = s.Export(ctx, partner, node.ExportRequest{Format: export.FormatPlain, Filter: export.Filter{Collections: []string{"internal"}}})
	wantCode(t, err, entente.EFORBIDDEN)

	// The partner's export was audited: one release per collection read,
	// listing every indicator version it released, none of internal.
	log, err := s.QueryAudit(ctx, admin, node.AuditQuery{Partner: partnerB, Action: node.AuditEgress})
	if err != nil {
		t.Fatal(err)
	}
	intel, err := s.Objects(ctx, admin, node.CollectionIntel, entente.ObjectQuery{Types: []string{"indicator"}})
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, r := range log.Records {
		if strings.HasPrefix(r.Detail, "export plain ") {
			exported = append(exported, r.ObjectID)
			if r.Seq>>audit.SeqShift != log.Records[0].Seq>>audit.SeqShift || r.Actor != partner.KeyID {
				t.Errorf("export audit record %+v: not in the one release of the export by %s", r, partner.KeyID)
			}
		}
	}
	if len(exported) != len(intel.Entries) {
		t.Fatalf("partner export audited %d versions, the collection holds %d indicators: %+v", len(exported), len(intel.Entries), log.Records)
	}
	for _, e := range intel.Entries {
		if !slices.Contains(exported, e.ID) {
			t.Errorf("exported indicator %s not audited", e.ID)
		}
	}
}

// TestExportIndexFollowsChanges checks that exports by the node's own
// roles, served from the export index, follow what is added (new
// indicators, newer versions that revoke or change them, older versions
// that must not win), deleted and what expires, and that an index built
// at once from the store renders the same as one kept up to date.
func TestExportIndexFollowsChanges(t *testing.T) {
	s, st, c := newService(t)
	ctx := context.Background()
	ind := func(n int, ip string, modified time.Time, extra string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-%012d","created":"2025-01-01T00:00:00.000Z","modified":%q,`+
			`"pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"%s}`, n, modified.Format("2006-01-02T15:04:05.000Z"), ip, extra))
	}
	add := func(objs ...json.RawMessage) {
		t.Helper()
		if res, err := s.AddObjects(ctx, admin, "intel", objs); err != nil || res.FailureCount > 0 {
			t.Fatalf("add: %v %+v", err, res)
		}
	}
	if _, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "intel", Title: "Intel"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	req := node.ExportRequest{Format: export.FormatPlain, Options: export.Options{NoAggregate: true}}
	want := func(step string, ips ...string) {
		t.Helper()
		body, _ := exportBody(t, s, admin, req)
		got := strings.Fields(body)
		slices.Sort(got)
		slices.Sort(ips)
		if !slices.Equal(got, ips) {
			t.Fatalf("%s: exported %v, want %v", step, got, ips)
		}
	}
	add(ind(1, "198.51.100.1", t0, ""), ind(2, "198.51.100.2", t0, ""))
	want("first export builds the index", "198.51.100.1", "198.51.100.2")

	c.add(time.Second)
	add(ind(1, "198.51.100.1", t0.Add(time.Hour), `,"revoked":true`), ind(3, "198.51.100.3", t0, ""),
		ind(2, "198.51.100.99", t0.Add(-time.Hour), ""), // an older version of 2
		ind(4, "198.51.100.4", t0, `,"valid_until":"2025-12-31T00:00:00Z"`))
	want("after additions", "198.51.100.2", "198.51.100.3")

	c.add(time.Second)
	add(ind(2, "198.51.100.20", t0.Add(time.Hour), ""))
	if err := s.DeleteObject(ctx, admin, "intel", ind3ID, entente.VersionFilter{}, nil); err != nil {
		t.Fatal(err)
	}
	want("after a new version and a deletion", "198.51.100.20")

	// A node started afresh on the same store builds its index at once:
	// the same export, byte for byte.
	body, etag := exportBody(t, s, admin, node.ExportRequest{Format: export.FormatCSV})
	fresh := node.New(st, node.Config{Org: org, Now: c.now}, nil)
	body2, etag2 := exportBody(t, fresh, admin, node.ExportRequest{Format: export.FormatCSV})
	if body != body2 || etag != etag2 {
		t.Fatalf("index kept up to date renders\n%s\nan index built at once renders\n%s", body, body2)
	}
}

const ind3ID = "indicator--8e2e2d2b-17d4-4cbf-938f-000000000003"

func TestWarmExportIndexes(t *testing.T) {
	s, c := initNode(t)
	importList(t, s, c, node.CollectionIntel, "feed-a", "198.51.100.7\n198.51.100.8\nexample.org\n", feed.Options{})
	intel, err := s.Collection(context.Background(), admin, node.CollectionIntel)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ExportIndexItems(intel.ID); ok {
		t.Fatal("an export index exists before any export or warm-up")
	}
	if err := s.WarmExportIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, ok := s.ExportIndexItems(intel.ID); !ok || n != 3 {
		t.Fatalf("after the warm-up the intel index holds %d items (exists %v), want the 3 indicators", n, ok)
	}
	body, _ := exportBody(t, s, admin, node.ExportRequest{Format: export.FormatPlain})
	for _, v := range []string{"198.51.100.7", "198.51.100.8", "example.org"} {
		if !strings.Contains(body, v) {
			t.Errorf("export after the warm-up lacks %s:\n%s", v, body)
		}
	}
}
