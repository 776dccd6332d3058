package httpapi_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/testutil"
)

var updateRoles = flag.Bool("update", false, "rewrite docs/roles.md from the route/role table")

// rolesDoc renders docs/roles.md from the route/role table.
func rolesDoc() string {
	var b strings.Builder
	b.WriteString(`# Roles: who sees and does what

<!-- Generated from the route/role table of internal/httpapi (roles.go) by
     go test ./internal/httpapi -run TestRolesDoc -update; do not edit. -->

Every API key has one role. The node API refuses, with 403 and before anything
runs, a key whose role a route does not list below; the node service then checks
again and decides what of the data the key sees: every object leaves through the
policy gate, as the key's organisation and role, so a partner sees what its
agreement releases, and a collection's read and write roles decide who reads and
writes it (TAXII 2.1 at ` + "`/taxii2/`" + ` lists to each key the collections it may read).

- **admin** runs the node: keys, collections, partners and agreements, peers, feeds,
  the audit log, metrics; and everything an analyst does.
- **analyst** works the intelligence: search, object pages, graph, ATT&CK matrix,
  alerts, indicators, notes, opinions, labels, reports, false positives; reads
  partners and agreements (and previews them) but does not change them; does not
  read the audit log.
- **sensor** downloads the indicator snapshot, reports sightings, asks why a value
  is protected; nothing else.
- **partner** is another organisation's node: it pulls and pushes over TAXII, as its
  agreement allows, downloads its snapshot, uses blind access when granted, and
  reports sightings; it reads none of the analysts' views.

The dashboard (` + "`/ui/`" + `) signs in analyst and admin keys and calls the same node
service, so it shows each what this table allows.

| route | admin | analyst | sensor | partner | what | also decided by |
|---|:-:|:-:|:-:|:-:|---|---|
`)
	for _, a := range httpapi.AccessTable() {
		method, path, _ := strings.Cut(a.Pattern, " ")
		path = strings.TrimSuffix(path, "{$}")
		b.WriteString("| `" + method + " " + path + "` |")
		for _, r := range []entente.Role{entente.RoleAdmin, entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner} {
			if slices.Contains(a.Roles, r) {
				b.WriteString(" ✓ |")
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString(" " + a.What + " | " + a.Note + " |\n")
	}
	return b.String()
}

// TestRolesDoc keeps docs/roles.md the rendering of the route/role table.
func TestRolesDoc(t *testing.T) {
	path := filepath.Join(testutil.RepoRoot(t), "docs", "roles.md")
	want := rolesDoc()
	if *updateRoles {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/httpapi -run TestRolesDoc -update)", err)
	}
	if string(got) != want {
		t.Errorf("docs/roles.md is not the route/role table: run go test ./internal/httpapi -run TestRolesDoc -update")
	}
}

// TestAPIDocPython runs the Python example of docs/api.md against a node
// holding ATT&CK, with python3 when the machine has it.
func TestAPIDocPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	doc, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	if !ok {
		t.Fatal("docs/api.md has no python block")
	}
	program, _, _ := strings.Cut(rest, "```")
	e := workbenchEnv(t)
	cmd := exec.CommandContext(t.Context(), python, "-c", program)
	cmd.Env = append(os.Environ(), "NODE="+e.srv.URL, "KEY="+e.keys[entente.RoleAnalyst])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the Python example failed: %v\n%s", err, out)
	}
	for _, want := range []string{"intrusion-set " + apt28 + " APT28 amber", "APT28 ", "1 intrusion sets", "pattern ok: False", "created indicator--"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}
