package main

import (
	"flag"
	"fmt"
	"strings"
)

// verb is one subcommand of a command that has several (key create, key
// revoke...): what "entente key --help" lists and what "entente key revoke
// --help" explains.
type verb struct {
	name string
	// args are the verb's positional arguments and main flags, as the
	// synopsis shows them ("ID", "--partner ID").
	args string
	// short is the verb's line in its command's list.
	short string
	// long is the verb's own --help text; short when empty.
	long string
	// positional is how many positional arguments the verb takes: 0, 1,
	// or -1 for any number.
	positional int
}

// remoteFooter closes the help of commands that work on a running node or
// offline.
const remoteFooter = "Each talks to a running node (--server URL --token KEY, or ENTENTE_SERVER and\nENTENTE_TOKEN) or works offline on a stopped one (--data DIR).\n"

// verbsOf lists the verbs of each command that has some, for its help and
// for the test that every verb explains itself.
var verbsOf = map[string][]verb{
	"key": {
		{name: "create", args: "--role ROLE [--org IDENTITY] [--name LABEL]", short: "print a new key once, on stdout",
			long: "Create an API key and print its secret once, on stdout; the node keeps only its hash.\n" +
				"Roles: admin (everything), analyst (read, write intel, alerts), partner (what its\n" +
				"agreement releases; --org names the partner's identity), sensor (indicator snapshots\n" +
				"and sightings)."},
		{name: "list", short: "list keys (never their secrets)",
			long: "List the node's API keys: id, role, organisation, label, creation and revocation."},
		{name: "revoke", args: "ID", positional: 1, short: "refuse a key from now on",
			long: "Revoke the key ID (the first column of 'key list', and the part after ent_ in the\n" +
				"key itself): every request that presents it is refused from now on."},
	},
	"collection": {
		{name: "create", args: "--title T [--alias A] [--read ROLES] [--write ROLES] [--tlp LEVEL]", short: "create a TAXII collection",
			long: "Create a TAXII 2.1 collection and print its id. --read and --write name the roles that\n" +
				"may read and write it; --tlp marks the objects that arrive without a marking."},
		{name: "list", short: "list collections",
			long: "List the node's collections: id, alias, title, the roles that read and write them and\nthe TLP given to unmarked objects."},
	},
	"partner": {
		{name: "add", args: "--id identity--… --name N --country CC [--sector S]", short: "record (or update) an organisation the node shares with",
			long: "Record an organisation the node may share with: its STIX identity id (as it gave it\n" +
				"to you), name and country. Sharing itself needs an agreement ('entente agreement set')."},
		{name: "list", short: "list partners", long: "List the partners the node knows: identity id, name, country and sector."},
		{name: "remove", args: "ID", positional: 1, short: "forget a partner (refused while an agreement with it exists)",
			long: "Forget the partner whose identity id is ID. Refused while an agreement with it exists:\n" +
				"delete the agreement first ('entente agreement delete --partner ID'). Audited."},
		{name: "quarantine", args: "ID [--reason TEXT]", positional: 1, short: "stop acting on anything a partner contributed",
			long: "Quarantine the partner ID: its sightings stop counting towards alerts, and the alerts\n" +
				"they raised or escalated are withdrawn or lowered at once; its indicators leave every\n" +
				"export, sensor snapshot and release to other partners. Its objects are kept. Audited."},
		{name: "release", args: "ID", positional: 1, short: "end a partner's quarantine",
			long: "End the quarantine of the partner ID: what it sent counts again (its stored sightings\n" +
				"are correlated again). Audited."},
		{name: "trust", args: "ID [--weight W] [--quota N]", positional: 1, short: "set how far correlation trusts a partner",
			long: "Set the partner's trust: --weight is what it counts for towards a tier's independent\n" +
				"sources (0 to 10; 1 is one source), --quota how many sightings it may add per\n" +
				"correlation window (0: no quota). A negative value returns to the node's default\n" +
				"([correlation] default_weight, default_quota). Alerts are reassessed at once. Audited."},
	},
	"agreement": {
		{name: "set", args: "--partner ID --collections a,b [--types t1,t2] --max-tlp clear|green|amber|amber+strict [--reshare] [--redact victims,identities,freetext] [--from T] [--until T]",
			short: "record the agreement with a partner (replacing any)",
			long: "Record the sharing agreement with a partner, replacing any earlier one: which\n" +
				"collections and object types it may receive, up to which TLP, what is redacted and\n" +
				"from when to when (RFC 3339 times). Takes effect on the next request."},
		{name: "list", short: "list agreements", long: "List every agreement: partner, country, collections, highest TLP, validity."},
		{name: "show", args: "--partner ID", short: "print an agreement as JSON", long: "Print the agreement with one partner as JSON."},
		{name: "delete", args: "--partner ID", short: "end an agreement", long: "End the agreement with a partner: nothing is released to it from now on."},
		{name: "preview", args: "--partner ID [--objects]", short: "summarise what the partner would receive, per rule, type and TLP",
			long: "Summarise what the partner would receive under its agreement now: counts of objects\n" +
				"released and withheld per rule, per type and per TLP, and the fields granular markings\n" +
				"would remove. --objects lists every object with its decision and the rule, page by\n" +
				"page as the node answers (a node of millions of objects never answers in one piece)."},
	},
	"peer": {
		{name: "add", args: "--name N --api-root URL --collection REMOTE --into LOCAL --peer-token KEY [--org identity--…] [--direction pull|push|both] [--no-check]",
			short: "federate with another TAXII 2.1 server",
			long: "Federate with another TAXII 2.1 server: pull its collection REMOTE into this node's\n" +
				"collection LOCAL, push LOCAL to it, or both. --peer-token is the key the peer issued\n" +
				"to this node; it is stored and never shown. The peer is checked first (its API root\n" +
				"and collection are read with the token) unless --no-check."},
		{name: "list", short: "list peers and their sync state", long: "List the peers: direction, API root, collections, last sync and last error."},
		{name: "remove", args: "ID", positional: 1, short: "stop federating with a peer", long: "Stop federating with the peer ID (the first column of 'peer list')."},
		{name: "sync", args: "[ID...]", positional: -1, short: "sync one peer, or every peer, now",
			long: "Sync the peers named (every peer when none is) now: pull what is new, push what is\n" +
				"pending. Every peer is tried; the command fails if any did."},
	},
	"alert": {
		{name: "list", args: "[--status S] [--tier T]", short: "list coordinated alerts, most recently changed first",
			long: "List coordinated alerts, most recently changed first: status, tier, how many\norganisations and which countries sighted the threat."},
		{name: "show", args: "ID", positional: 1, short: "an alert's counts, countries and history",
			long: "Print the alert ID (the first column of 'alert list'): its counts, countries and history."},
		{name: "ack", args: "ID [--note TEXT]", positional: 1, short: "take an alert in hand",
			long: "Acknowledge the alert ID: someone is on it. The note goes in its history."},
		{name: "resolve", args: "ID [--note TEXT]", positional: 1, short: "close an alert",
			long: "Resolve the alert ID. The note goes in its history."},
		{name: "false-positive", args: "OBJECT [--reason TEXT]", positional: 1, short: "withdraw an indicator or sighting everywhere",
			long: "Mark the object OBJECT (an indicator, a sighting…) a false positive: a STIX opinion of\n" +
				"strongly-disagree is stored with it and follows it through the gate to every partner\n" +
				"that received it, who withdraw it too; the node revokes it when it owns it. It leaves\n" +
				"every export and sensor snapshot, and the alerts it supported are withdrawn or lowered\n" +
				"at once (printed). Audited."},
	},
	"feed": {
		{name: "add", args: "--name N --url URL [--format F] [--interval D]", short: "configure a feed the node polls over HTTP",
			long: "Configure a feed the node polls over HTTP and imports as 'entente import' would:\n" +
				"MISP events, CSV or plain lists, every --interval."},
		{name: "list", short: "list feeds and their last poll", long: "List the feeds: format, interval, collection, last poll, what it stored, last error."},
		{name: "remove", args: "ID", positional: 1, short: "stop polling a feed", long: "Stop polling the feed ID (the first column of 'feed list')."},
		{name: "poll", args: "ID", positional: 1, short: "poll a feed now", long: "Poll the feed ID now and print its outcome."},
	},
	"audit": {
		{name: "list", args: "[--partner ID] [--object ID] [--action egress|admin] [--since T] [--until T]",
			short: "list the audit log, oldest first",
			long: "List the audit log, oldest first: every object version that left the node (to whom,\n" +
				"when, under which rule) and every administrative change. Times are RFC 3339."},
	},
	"pattern": {
		{name: "validate", args: "[--file F] [--spec-version 2.1|2.0] [PATTERN...]", positional: -1,
			short: "check STIX patterns, pointing at each fault",
			long: "Check STIX patterns, given as arguments or one per line in --file (blank lines and\n" +
				"lines starting with # are skipped). Prints \"ok\" for each valid pattern and, for each\n" +
				"invalid one, the pattern with a caret under the fault and the reason. Exits 1 if\n" +
				"any pattern is invalid."},
		{name: "match", args: "--observed FILE PATTERN", positional: 1,
			short: "match a pattern against observed-data",
			long: "Match a STIX pattern against the observed-data in FILE (a bundle, or a JSON array of\n" +
				"bundles and objects; - for standard input) and print \"match\" with the observed-data\n" +
				"bound to each observation expression, or \"no match\". Exits 0 either way; non-zero\n" +
				"only on errors."},
	},
}

// verbList renders a command's verbs for its help.
func verbList(cmd string) string {
	var b strings.Builder
	for _, v := range verbsOf[cmd] {
		line := "  " + v.name
		if v.args != "" {
			line += " " + v.args
		}
		if len(line) > 38 {
			fmt.Fprintf(&b, "%s\n%-40s%s\n", line, "", v.short)
		} else {
			fmt.Fprintf(&b, "%-40s%s\n", line, v.short)
		}
	}
	return b.String()
}

// verbNames lists a command's verbs for messages: "create, list or revoke".
func verbNames(cmd string) string {
	vs := verbsOf[cmd]
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.name
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// commandHelp is the help of a command with verbs: its verbs, then text.
func commandHelp(cmd, text string) string {
	return verbList(cmd) + "\n" + text
}

// lookupVerb returns the verb sub of cmd.
func lookupVerb(cmd, sub string) (verb, error) {
	for _, v := range verbsOf[cmd] {
		if v.name == sub {
			return v, nil
		}
	}
	return verb{}, usagef("unknown subcommand %q (%s)", sub, verbNames(cmd))
}

// verbFlags returns the flag set of verb sub of cmd, whose --help gives the
// verb's synopsis, with its positional arguments, and its description.
func verbFlags(env *Env, cmd, sub string) (*flag.FlagSet, verb, error) {
	v, err := lookupVerb(cmd, sub)
	if err != nil {
		return nil, v, err
	}
	synopsis := cmd + " " + sub + " [flags]"
	if v.args != "" {
		synopsis = cmd + " " + sub + " " + v.args + " [flags]"
	}
	help := v.long
	if help == "" {
		help = v.short
	}
	return newFlags(env, cmd+" "+sub, synopsis, help), v, nil
}

// parseVerb parses a verb's arguments: flags and positional arguments in
// any order ("alert ack ID --note x" as well as "alert ack --note x ID"),
// checking how many positional arguments the verb takes.
func parseVerb(fs *flag.FlagSet, v verb, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // after "--", all are positional
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case v.positional == 0 && len(pos) > 0:
		return nil, usagef("%s takes no argument, got %q", fs.Name(), pos[0])
	case v.positional > 0 && len(pos) != v.positional:
		return nil, usagef("%s takes %d argument (%s), got %d", fs.Name(), v.positional, v.args, len(pos))
	}
	return pos, nil
}
