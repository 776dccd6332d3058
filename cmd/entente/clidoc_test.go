package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/cli.md from the commands' help")

// cliDoc renders the help of every command and verb as Markdown.
func cliDoc(t *testing.T) []byte {
	t.Helper()
	help := func(args ...string) string {
		_, _, errs := run(t, nil, nil, args...)
		return strings.TrimRight(errs, "\n")
	}
	var b bytes.Buffer
	b.WriteString("# Command-line reference\n\n<!-- Generated from the commands' --help by \"go test ./cmd/entente -run TestCLIDoc -update\"; do not edit. -->\n\n")
	b.WriteString("Every command and verb prints what follows with `--help`. Commands that act on a node talk to a\nrunning one (`--server URL --token KEY`, or `ENTENTE_SERVER` and `ENTENTE_TOKEN`) or work offline\non a stopped one's data (`--data DIR`). The configuration file of `entente serve --config` is\ndescribed in [configuration.md](configuration.md).\n\n")
	fmt.Fprintf(&b, "```\n%s\n```\n", help("help"))
	for _, c := range commands {
		fmt.Fprintf(&b, "\n## entente %s\n\n```\n%s\n```\n", c.name, help(c.name, "--help"))
		for _, v := range verbsOf[c.name] {
			fmt.Fprintf(&b, "\n### entente %s %s\n\n```\n%s\n```\n", c.name, v.name, help(c.name, v.name, "--help"))
		}
	}
	return b.Bytes()
}

// TestCLIDoc: docs/cli.md is the commands' help, so it cannot drift from
// the binary.
func TestCLIDoc(t *testing.T) {
	doc := cliDoc(t)
	path := filepath.Join(testutil.RepoRoot(t), "docs", "cli.md")
	if *updateDocs {
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(cur, doc) {
		t.Fatalf("docs/cli.md is not the commands' help: run go test ./cmd/entente -run TestCLIDoc -update (%v)", err)
	}
}
