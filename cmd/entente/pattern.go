package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/entente-cti/entente/internal/stix/pattern"
)

// cmdPattern validates STIX patterns and matches them against observed
// data: "entente pattern validate" and "entente pattern match".
func cmdPattern(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "pattern validate|match [flags]",
		commandHelp("pattern", "STIX patterns are the indicator language of STIX 2.1 (section 9); 2.0 patterns are\n"+
			"accepted too. Both work offline: no node is needed.\n"))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "pattern", sub)
	if err != nil {
		return err
	}
	if sub == "validate" {
		return cmdPatternValidate(env, fs, v, args)
	}
	return cmdPatternMatch(env, fs, v, args)
}

func specVersion(s string) (pattern.Version, error) {
	switch s {
	case "":
		return pattern.VersionAny, nil
	case "2.0":
		return pattern.Version20, nil
	case "2.1":
		return pattern.Version21, nil
	}
	return "", usagef("--spec-version must be 2.1 or 2.0, not %q", s)
}

func cmdPatternValidate(env *Env, fs *flag.FlagSet, vb verb, args []string) error {
	file := fs.String("file", "", "read patterns from this file, one per line (- for standard input)")
	spec := fs.String("spec-version", "", "accept only this dialect: 2.1 or 2.0 (default: both)")
	pats, err := parseVerb(fs, vb, args)
	if err != nil {
		return err
	}
	v, err := specVersion(*spec)
	if err != nil {
		return err
	}
	var sources []pattern.Source
	for _, a := range pats {
		sources = append(sources, pattern.Source{Text: a})
	}
	if *file != "" {
		fromFile, err := readPatternFile(env, *file)
		if err != nil {
			return err
		}
		sources = append(sources, fromFile...)
	}
	if len(sources) == 0 {
		return usagef("no patterns given: pass them as arguments or with --file")
	}
	invalid, err := pattern.WriteValidation(env.Stdout, sources, v)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if invalid > 0 {
		return fmt.Errorf("%d of %d patterns are invalid", invalid, len(sources))
	}
	return nil
}

// readPatternFile reads one pattern per line, naming each "file:line".
func readPatternFile(env *Env, name string) ([]pattern.Source, error) {
	var sc *bufio.Scanner
	if name == "-" {
		sc = bufio.NewScanner(env.Stdin)
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("read patterns: %w", err)
		}
		defer f.Close()
		sc = bufio.NewScanner(f)
	}
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var out []pattern.Source
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, pattern.Source{Name: fmt.Sprintf("%s:%d", name, n), Text: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read patterns %s: %w", name, err)
	}
	return out, nil
}

func cmdPatternMatch(env *Env, fs *flag.FlagSet, vb verb, args []string) error {
	observed := fs.String("observed", "", "JSON file with observed-data and the objects they refer to")
	spec := fs.String("spec-version", "", "accept only this pattern dialect: 2.1 or 2.0 (default: both)")
	pats, err := parseVerb(fs, vb, args)
	if err != nil {
		return err
	}
	if *observed == "" {
		return usagef("--observed is required")
	}
	v, err := specVersion(*spec)
	if err != nil {
		return err
	}
	src := pats[0]
	p, err := pattern.ParseVersion(src, v)
	if err != nil {
		fmt.Fprint(env.Stderr, pattern.FormatError(src, err))
		return fmt.Errorf("invalid pattern")
	}
	var data []byte
	if *observed == "-" {
		data, err = io.ReadAll(env.Stdin)
	} else {
		data, err = os.ReadFile(*observed)
	}
	if err != nil {
		return fmt.Errorf("read observations: %w", err)
	}
	obs, err := pattern.ReadObservations(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *observed, err)
	}
	res, err := pattern.Match(p, obs)
	if err != nil {
		return err
	}
	return pattern.WriteMatch(env.Stdout, res)
}
