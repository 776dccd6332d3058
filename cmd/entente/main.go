// Command entente runs and drives an Entente node: a sovereign, federated
// exchange for cyber-threat intelligence (STIX 2.1 over TAXII 2.1).
//
// Usage:
//
//	entente <command> [flags]
//
// Run "entente help" for the list of commands and "entente <command>
// --help" for each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/entente-cti/entente/internal/drill"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	stopProfiles := startProfiles(os.Getenv)
	code := Run(ctx, env, os.Args[1:])
	stopProfiles()
	stop()
	os.Exit(code)
}

// Env is what a command may touch of the outside world, so that tests can
// run commands in-process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer // output meant for programs
	Stderr io.Writer // output meant for people
	Getenv func(string) string
}

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands lists every subcommand, in the order "entente help" shows them.
// Each lives in its own file, named after it.
var commands = []command{
	{"init", "create a node's data directory, identity and first admin key", cmdInit},
	{"serve", "run a node: TAXII 2.1, node API, exports, metrics", cmdServe},
	{"ingest", "load STIX bundles into a node (running, or offline)", cmdIngest},
	{"import", "import MISP, CSV and plain-list feeds into a node, deduplicated", cmdImport},
	{"export", "render indicators as nftables, RPZ, Suricata, MISP feed and other blocklists", cmdExport},
	{"feed", "configure, list and poll the feeds a node imports over HTTP", cmdFeed},
	{"key", "create, list and revoke API keys", cmdKey},
	{"collection", "create and list TAXII collections", cmdCollection},
	{"partner", "add, list and remove the organisations the node shares with", cmdPartner},
	{"agreement", "set, list, show, delete and preview sharing agreements", cmdAgreement},
	{"audit", "list what left the node and every administrative change", cmdAudit},
	{"peer", "federate with other TAXII 2.1 nodes: add, list, remove, sync", cmdPeer},
	{"pattern", "validate STIX patterns and match them against observations", cmdPattern},
	{"match", "match network logs against indicators and report sightings", cmdMatch},
	{"watch", "watch what devices talk to: beacons, first contacts, class policies; findings as sightings", cmdWatch},
	{"devices", "list the devices the watch knows: class, countries, top destinations, findings", cmdDevices},
	{"alert", "list, show, acknowledge and resolve coordinated alerts", cmdAlert},
	{"drill", "run a federation on this machine, replay an outbreak, measure alert propagation", cmdDrill},
	{"version", "print the version, revision and Go version of this binary", cmdVersion},
	{"bench", "measure every headline figure beside its goal and its peer; compare two runs", cmdBench},
}

// internalCommands are run by entente itself, never by people: "entente
// help" and docs/cli.md leave them out.
var internalCommands = []command{
	{drill.ProxyCommand, "one process of the drill's WAN proxy, driven over its standard input and output", cmdDrillProxy},
}

// Run runs the command named by args[0] and returns the process exit code.
func Run(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range slices.Concat(commands, internalCommands) {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(env.Stderr, "entente %s: %v\nRun 'entente %s --help' for usage.\n", c.name, ue.err, c.name)
			return 2
		}
		fmt.Fprintf(env.Stderr, "entente %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(env.Stderr, "entente: unknown command %q\n", args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Entente: a sovereign, federated exchange for cyber-threat intelligence.")
	fmt.Fprintln(w, "\nUsage: entente <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'entente <command> --help' for a command's flags.")
}

// usageError is an error in how a command was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// newFlags returns a flag set for a subcommand that prints its usage line
// and flags on --help. Flags are written with long names (--data).
func newFlags(env *Env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: entente %s\n\n%s\n\nFlags:\n", synopsis, help)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(env.Stderr, "  --%s\n\t%s%s\n", f.Name, f.Usage, defaultNote(f))
		})
	}
	return fs
}

// defaultNote is what a flag's help says of its default: nothing for a
// zero value or when its text already names the default.
func defaultNote(f *flag.Flag) string {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
		return ""
	}
	if strings.Contains(f.Usage, "(default") {
		return ""
	}
	if fmt.Sprintf("%T", f.Value) == "*flag.stringValue" {
		return fmt.Sprintf(" (default %q)", f.DefValue)
	}
	return " (default " + f.DefValue + ")"
}

// parseFlags parses args into fs, turning parse errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// subcommand splits the arguments of a command that has subcommands. With
// none, or when help is asked for, it prints the usage (synopsis, then the
// help text) and reports done, with a usage error when none was given.
func subcommand(env *Env, args []string, synopsis, help string) (sub string, rest []string, done bool, err error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(env.Stderr, "Usage: entente %s\n\n%s", synopsis, help)
		if len(args) == 0 {
			return "", nil, true, usagef("a subcommand is required")
		}
		return "", nil, true, nil
	}
	return args[0], args[1:], false, nil
}

// remoteFlags are the flags of commands that talk to a running node.
type remoteFlags struct {
	server   string
	token    string
	tokenEnv string
	pin      string
}

func (r *remoteFlags) register(fs *flag.FlagSet, env *Env) {
	fs.StringVar(&r.server, "server", env.Getenv("ENTENTE_SERVER"), "URL of a running node (or $ENTENTE_SERVER)")
	fs.StringVar(&r.token, "token", "", "API key for --server (or $ENTENTE_TOKEN)")
	fs.StringVar(&r.pin, "server-pin", env.Getenv("ENTENTE_SERVER_PIN"), "fingerprint (SHA256:…) of the TLS key of a --server that serves its own key (serve --tls), or $ENTENTE_SERVER_PIN")
	// The token's environment value is not the flag's default, so that
	// --help never prints a secret.
	r.tokenEnv = env.Getenv("ENTENTE_TOKEN")
}

// key returns the API key given by --token or $ENTENTE_TOKEN.
func (r *remoteFlags) key() string {
	if r.token != "" {
		return r.token
	}
	return r.tokenEnv
}
