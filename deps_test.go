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
}

// TestEgressReachesStoreOnlyThroughTheGate walks the import graph from each
// egress package, not entering internal/node, and fails if it reaches any
// package of internal/store.
func TestEgressReachesStoreOnlyThroughTheGate(t *testing.T) {
	pkgs := listPackages(t)
	gate := module + "/internal/node"
	for _, e := range egress {
		start := module + "/" + e
		if _, ok := pkgs[start]; !ok {
			continue // not written yet
		}
		seen := map[string]string{start: ""}
		queue := []string{start}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			if strings.HasPrefix(cur, module+"/internal/store") {
				chain := []string{cur}
				for p := seen[cur]; p != ""; p = seen[p] {
					chain = append(chain, p)
				}
				slices.Reverse(chain)
				t.Errorf("egress package %s reaches the store without the policy gate: %s", e, strings.Join(chain, " -> "))
				break
			}
			for _, imp := range pkgs[cur].imports {
				if imp == gate || !strings.HasPrefix(imp, module) {
					continue
				}
				if _, ok := seen[imp]; !ok {
					seen[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
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
