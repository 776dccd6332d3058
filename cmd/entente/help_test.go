package main

import (
	"bytes"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestEveryCommandExplainsItself: "entente CMD --help" and "entente CMD
// VERB --help" exit 0 with a synopsis naming the positional arguments, a
// description, and flag defaults printed once (issue 14, item 4).
func TestEveryCommandExplainsItself(t *testing.T) {
	twice := regexp.MustCompile(`\(default.*\(default`)
	check := func(t *testing.T, args []string, wantUsage string, desc string) {
		t.Helper()
		code, out, errs := run(t, nil, nil, args...)
		if code != 0 || out != "" {
			t.Fatalf("entente %s: exit %d, stdout %q", strings.Join(args, " "), code, out)
		}
		if !strings.Contains(errs, "Usage: entente "+wantUsage) {
			t.Errorf("entente %s: no %q in\n%s", strings.Join(args, " "), "Usage: entente "+wantUsage, errs)
		}
		// A description: a non-empty line after the usage line.
		lines := strings.Split(errs, "\n")
		if len(lines) < 3 || strings.TrimSpace(lines[2]) == "" {
			t.Errorf("entente %s: no description:\n%s", strings.Join(args, " "), errs)
		}
		if desc != "" && !strings.Contains(errs, desc) {
			t.Errorf("entente %s: lacks %q:\n%s", strings.Join(args, " "), desc, errs)
		}
		for _, l := range lines {
			if twice.MatchString(l) || strings.Contains(l, `(default "0s")`) || strings.Contains(l, `(default "0")`) {
				t.Errorf("entente %s: default printed twice or zero default: %q", strings.Join(args, " "), l)
			}
		}
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			check(t, []string{c.name, "--help"}, c.name, "")
			for _, v := range verbsOf[c.name] {
				usage := c.name + " " + v.name
				if v.args != "" {
					usage += " " + v.args
				}
				firstLine := strings.SplitN(v.long, "\n", 2)[0]
				check(t, []string{c.name, v.name, "--help"}, usage, firstLine)
				if v.positional == 1 && v.args == "" {
					t.Errorf("%s %s takes an argument its synopsis does not name", c.name, v.name)
				}
			}
		})
	}
	// The verbs that take an id say so.
	for _, cv := range []string{"key revoke ID", "alert show ID", "peer sync [ID...]", "peer remove ID", "partner remove ID", "feed poll ID"} {
		f := strings.Fields(cv)
		_, _, errs := run(t, nil, nil, f[0], f[1], "--help")
		if !strings.Contains(errs, "Usage: entente "+cv) {
			t.Errorf("%s --help:\n%s", cv, errs)
		}
	}
}

// TestVerbArguments: a verb given too few or too many positional
// arguments is a usage error that says what it takes; flags may follow
// the arguments.
func TestVerbArguments(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"key", "revoke", "--data", dir}, 2, "key revoke takes 1 argument (ID), got 0"},
		{[]string{"key", "revoke", "a", "b", "--data", dir}, 2, "key revoke takes 1 argument (ID), got 2"},
		{[]string{"key", "revoke", "nosuchkey", "--data", dir}, 1, "nosuchkey"},
		{[]string{"key", "list", "extra", "--data", dir}, 2, `key list takes no argument, got "extra"`},
		{[]string{"alert", "ack", "alert--x", "--note", "mine", "--data", dir}, 1, "alert--x"},
		{[]string{"key", "frob"}, 2, "unknown subcommand \"frob\" (create, list or revoke)"},
		{[]string{"audit", "list", "--data", dir}, 0, ""},
		{[]string{"audit", "--data", dir}, 0, ""},
		{[]string{"audit", "frob"}, 2, `unknown subcommand "frob" (list)`},
		{[]string{"pattern", "validate", "[ipv4-addr:value = '198.51.100.7']", "--spec-version", "2.1"}, 0, ""},
		{[]string{"pattern"}, 2, "a subcommand is required"},
	} {
		code, out, errs := run(t, nil, nil, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("entente %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.want)
		}
		if tc.args[0] == "audit" && code == 0 && !strings.Contains(out, "TIME\tACTION") && !strings.Contains(out, "TIME  ") {
			t.Errorf("entente %s: no audit table: %q", strings.Join(tc.args, " "), out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "entente ") || !strings.Contains(out, "built with go1.") {
		t.Fatalf("exit %d: %q", code, out)
	}
	var b bytes.Buffer
	writeVersion(&b, &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}})
	for _, want := range []string{"entente v1.2.3\n", "revision 0123abc (with uncommitted changes)\n", "committed 2026-01-02T03:04:05Z\n", "built with go1.99 "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("version lacks %q:\n%s", want, b.String())
		}
	}
	if code, _, _ := run(t, nil, nil, "version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d", code)
	}
}
