package entente_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/entente-cti/entente"

// pkgInfo is what "go list" says of one package of the module.
type pkgInfo struct {
	path    string
	hasDoc  bool
	imports []string
}

func listPackages(t *testing.T) map[string]pkgInfo {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{if .Doc}}doc{{end}}\t{{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkgInfo{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			t.Fatalf("unexpected go list line %q", sc.Text())
		}
		pkgs[f[0]] = pkgInfo{path: f[0], hasDoc: f[1] == "doc", imports: strings.Fields(f[2])}
	}
	return pkgs
}

// TestEveryPackageHasADocComment keeps the promise that every package says
// what it provides.
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if !p.hasDoc {
			t.Errorf("package %s has no package doc comment", p.path)
		}
	}
}

// The module's packages, each in one class. A package that is in no
// class, or a class entry naming no package, fails
// TestEveryPackageIsClassified: the lists cannot drift from the code.
var (
	// domain packages hold logic only: no network, no database, no store,
	// and no application or adapter package.
	domain = []string{
		"internal/audit",
		"internal/auth",
		"internal/blind",
		"internal/correlate",
		"internal/devices",
		"internal/devicewatch",
		"internal/export",
		"internal/feed",
		"internal/geo",
		"internal/gunzip",
		"internal/hugepage",
		"internal/jsonenc",
		"internal/match",
		"internal/observable",
		"internal/pin",
		"internal/policy",
		"internal/retraction",
		"internal/safety",
		"internal/sensor",
		"internal/stix",
		"internal/stix/pattern",
		"internal/taxonomy",
		"internal/taxii",
		"internal/warninglist",
	}
	// application packages are the node's services: they depend on the
	// domain and on small interfaces (ports), never on an adapter.
	application = []string{
		"internal/alerting",
		"internal/blindaccess",
		"internal/devicenode",
		"internal/egress",
		"internal/exports",
		"internal/federation",
		"internal/ingest",
		"internal/node",
		"internal/search",
		"internal/snapshots",
	}
	// adapters translate between the node and one technology.
	adapters = []string{
		"internal/blind/blindhttp",
		"internal/dashboard",
		"internal/feedfetch",
		"internal/httpapi",
		"internal/nodekey",
		"internal/notify",
		"internal/sensorclient",
		"internal/store/postgres",
		"internal/store/sqlite",
		"internal/taxiiclient",
	}
	// storeContract is the storage contract and its conformance suite.
	storeContract = []string{"internal/store", "internal/store/storetest"}
	// harness packages wire everything or support tests and tools.
	harness = []string{
		".",
		"cmd/entente",
		"internal/bench",
		"internal/config",
		"internal/devicesim",
		"internal/drill",
		"internal/drill/wan",
		"internal/soak",
		"internal/stix/schema",
		"internal/testutil",
		"tools/devicegen",
		"tools/matchgen",
		"tools/testsummary",
	}
)

// storeOwners are the only packages that may import internal/store (the
// contract or a backend): the gate, which turns stored objects into what
// leaves; ingest, which writes them; the node, which holds the store and
// wires the rest; the store itself; and what builds nodes (cmd, the drill,
// test support).
var storeOwners = []string{
	"internal/egress", "internal/ingest", "internal/node",
	"internal/store", "internal/store/postgres", "internal/store/sqlite", "internal/store/storetest",
	"cmd/entente", "internal/drill", "internal/testutil",
}

// egressAdapters are the adapters by which data leaves the node: none of
// them may reach the store except through the node or the gate.
var egressAdapters = []string{
	"internal/blind/blindhttp", "internal/dashboard", "internal/httpapi", "internal/notify",
	"internal/sensorclient", "internal/taxiiclient",
}

func pkgPath(p string) string {
	if p == "." {
		return module
	}
	return module + "/" + p
}

// TestEveryPackageIsClassified fails for a package in no class (or in
// two), and for a class entry that names no package.
func TestEveryPackageIsClassified(t *testing.T) {
	pkgs := listPackages(t)
	classOf := map[string]string{}
	for name, class := range map[string][]string{"domain": domain, "application": application, "adapters": adapters,
		"storeContract": storeContract, "harness": harness} {
		for _, p := range class {
			path := pkgPath(p)
			if _, ok := pkgs[path]; !ok {
				t.Errorf("%s lists %s, which is not a package of the module", name, p)
			}
			if prev, ok := classOf[path]; ok {
				t.Errorf("%s is in %s and in %s", p, prev, name)
			}
			classOf[path] = name
		}
	}
	for _, lists := range [][]string{storeOwners, egressAdapters} {
		for _, p := range lists {
			if _, ok := pkgs[pkgPath(p)]; !ok {
				t.Errorf("a rule names %s, which is not a package of the module", p)
			}
		}
	}
	for path := range pkgs {
		if _, ok := classOf[path]; !ok {
			t.Errorf("package %s is in no class of deps_test.go: say whether it is domain, application, adapter or harness", path)
		}
	}
}

// TestOnlyOwnersImportTheStore keeps the store behind the gate and
// ingest.
func TestOnlyOwnersImportTheStore(t *testing.T) {
	for path, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
		for _, imp := range p.imports {
			if strings.HasPrefix(imp, module+"/internal/store") && !slices.Contains(storeOwners, rel) {
				t.Errorf("%s imports %s: only %v may", rel, imp, storeOwners)
			}
		}
	}
}

// TestApplicationDependsOnPortsOnly keeps adapters out of the node's
// services: they are wired in cmd/entente.
func TestApplicationDependsOnPortsOnly(t *testing.T) {
	pkgs := listPackages(t)
	for _, a := range application {
		for _, imp := range pkgs[pkgPath(a)].imports {
			for _, ad := range adapters {
				if imp == pkgPath(ad) {
					t.Errorf("application package %s imports the adapter %s", a, ad)
				}
			}
			if imp == "net/http" {
				t.Errorf("application package %s imports net/http", a)
			}
		}
	}
	for _, a := range []string{"internal/exports", "internal/snapshots"} {
		for _, imp := range pkgs[pkgPath(a)].imports {
			if strings.HasPrefix(imp, module+"/internal/store") || imp == pkgPath("internal/node") {
				t.Errorf("%s imports %s: it takes the egress package, never the store", a, imp)
			}
		}
	}
}

// pathAvoiding returns an import chain from start to a package whose path
// starts with target that does not pass through gate, or nil if every such
// chain passes through gate.
func pathAvoiding(imports map[string][]string, start, gate, target string) []string {
	prev := map[string]string{start: ""}
	queue := []string{start}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if strings.HasPrefix(cur, target) {
			chain := []string{cur}
			for p := prev[cur]; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, imp := range imports[cur] {
			if imp == gate {
				continue
			}
			if _, ok := prev[imp]; !ok {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

func TestPathAvoiding(t *testing.T) {
	g := map[string][]string{
		"egress": {"node", "helper"},
		"node":   {"store"},
		"helper": {"util"},
		"util":   {"store/sqlite"},
		"clean":  {"node"},
	}
	if got := pathAvoiding(g, "egress", "node", "store"); !slices.Equal(got, []string{"egress", "helper", "util", "store/sqlite"}) {
		t.Fatalf("missed the path around the gate: %v", got)
	}
	if got := pathAvoiding(g, "clean", "node", "store"); got != nil {
		t.Fatalf("reported a path through the gate: %v", got)
	}
}

// TestEgressReachesStoreOnlyThroughTheGate walks the import graph from
// each egress adapter, entering neither internal/node nor internal/egress,
// and fails if it reaches any package of internal/store.
func TestEgressReachesStoreOnlyThroughTheGate(t *testing.T) {
	pkgs := listPackages(t)
	imports := map[string][]string{}
	for p, info := range pkgs {
		imports[p] = info.imports
	}
	for _, e := range egressAdapters {
		start := pkgPath(e)
		if chain := pathAvoidingAll(imports, start, []string{pkgPath("internal/node"), pkgPath("internal/egress")}, module+"/internal/store"); chain != nil {
			t.Errorf("egress adapter %s reaches the store without the gate: %s", e, strings.Join(chain, " -> "))
		}
	}
}

// pathAvoidingAll is pathAvoiding with several gates.
func pathAvoidingAll(imports map[string][]string, start string, gates []string, target string) []string {
	pruned := make(map[string][]string, len(imports))
	for p, imps := range imports {
		if slices.Contains(gates, p) {
			continue
		}
		pruned[p] = imps
	}
	return pathAvoiding(pruned, start, "", target)
}

// TestDomainPackagesDoNoIO keeps domain logic free of network and database
// code, so it can be tested without either.
func TestDomainPackagesDoNoIO(t *testing.T) {
	pkgs := listPackages(t)
	forbidden := []string{"net/http", "database/sql", "github.com/jackc/pgx/v5", "modernc.org/sqlite"}
	for _, d := range domain {
		for _, imp := range pkgs[pkgPath(d)].imports {
			if slices.Contains(forbidden, imp) || strings.HasPrefix(imp, module+"/internal/store") {
				t.Errorf("domain package %s imports %s", d, imp)
			}
			for _, other := range append(slices.Clone(application), adapters...) {
				if imp == pkgPath(other) {
					t.Errorf("domain package %s imports %s", d, other)
				}
			}
		}
	}
}
