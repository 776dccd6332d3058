package node_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
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
	page, err := s.Object(ctx, admin, node.CollectionIntel, id, taxii.Filters{})
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
	versions, err := s.Versions(ctx, admin, node.CollectionIntel, id, taxii.Filters{})
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
}
