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

// egress lists the packages by which data leaves the node. None of them may
// reach the store except through the node service, which applies the one
// policy gate and writes the audit record.
var egress = []string{
	"internal/httpapi",
	"internal/export",
	"internal/notify",
	"internal/taxiiclient",
	"internal/peer",
	"internal/dashboard",
}

// domain lists packages that hold logic only: no network, no database.
var domain = []string{
	"internal/stix",
	"internal/stix/pattern",
	"internal/policy",
	"internal/correlate",
	"internal/observable",
	"internal/taxii",
	"internal/pin",
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

// TestEgressReachesStoreOnlyThroughTheGate walks the import graph from each
// egress package, not entering internal/node, and fails if it reaches any
// package of internal/store.
func TestEgressReachesStoreOnlyThroughTheGate(t *testing.T) {
	pkgs := listPackages(t)
	imports := map[string][]string{}
	for p, info := range pkgs {
		imports[p] = info.imports
	}
	checked := 0
	for _, e := range egress {
		start := module + "/" + e
		if _, ok := pkgs[start]; !ok {
			continue // not written yet
		}
		checked++
		if chain := pathAvoiding(imports, start, module+"/internal/node", module+"/internal/store"); chain != nil {
			t.Errorf("egress package %s reaches the store without the policy gate: %s", e, strings.Join(chain, " -> "))
		}
	}
	if checked == 0 {
		t.Fatal("no egress package found: the list is out of date")
	}
}

// TestDomainPackagesDoNoIO keeps domain logic free of network and database
// code, so it can be tested without either.
func TestDomainPackagesDoNoIO(t *testing.T) {
	pkgs := listPackages(t)
	forbidden := []string{"net/http", "database/sql", "github.com/jackc/pgx/v5", "modernc.org/sqlite"}
	for _, d := range domain {
		p, ok := pkgs[module+"/"+d]
		if !ok {
			continue
		}
		for _, imp := range p.imports {
			if slices.Contains(forbidden, imp) || strings.HasPrefix(imp, module+"/internal/store") {
				t.Errorf("domain package %s imports %s", d, imp)
			}
		}
	}
}
