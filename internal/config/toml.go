package config

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// MarshalText writes d as a Go duration string ("10s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Setting is one key of the configuration file.
type Setting struct {
	// Key is the dotted TOML key: "listen", "tls.cert".
	Key string
	// Table is the TOML table the key is in ("" for the top level) and
	// Name the key within it.
	Table, Name string
	// Doc documents the setting (from the field's doc comment).
	Doc string
	// Value is the setting's value in c, written as TOML.
	Value string
	// Secret is how the value is redacted when printed: "" (it is not),
	// "url" (the password of a URL).
	Secret string
}

// Settings returns every setting of c, in the order of the file: the top
// level first, then each table.
func Settings(c Config) []Setting {
	var top, tables []Setting
	walk(reflect.ValueOf(c), "", &top, &tables)
	return append(top, tables...)
}

func walk(v reflect.Value, table string, top, tables *[]Setting) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" || name == "-" {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[Duration]() {
			walk(fv, name, tables, tables)
			continue
		}
		key := name
		if table != "" {
			key = table + "." + name
		}
		*top = append(*top, Setting{Key: key, Table: table, Name: name, Doc: keyDocs[key], Value: tomlValue(fv), Secret: f.Tag.Get("secret")})
	}
}

// tomlValue writes a setting's value as TOML.
func tomlValue(v reflect.Value) string {
	if d, ok := v.Interface().(Duration); ok {
		return tomlString(d.Duration.String())
	}
	switch v.Kind() {
	case reflect.String:
		return tomlString(v.String())
	case reflect.Int, reflect.Int64, reflect.Int32:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64, reflect.Float32:
		s := strconv.FormatFloat(v.Float(), 'f', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0" // a TOML float needs a fraction
		}
		return s
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			parts := make([]string, v.Len())
			for i := range parts {
				parts[i] = tomlString(v.Index(i).String())
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
	}
	panic(fmt.Sprintf("config: no TOML form for %s", v.Type()))
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// redact returns the value of a secret setting as it may be shown.
func redact(s Setting) string {
	switch {
	case s.Secret == "" || s.Value == `""`:
		return s.Value // no secret, or none given
	case s.Secret == "key":
		return tomlString("(redacted)")
	}
	switch s.Secret {
	case "url":
		raw, err := strconv.Unquote(s.Value)
		if err != nil || raw == "" {
			return s.Value
		}
		u, err := url.Parse(raw)
		if err != nil {
			return tomlString("(redacted: not a URL)")
		}
		return tomlString(u.Redacted())
	}
	return tomlString("(redacted)")
}

// WriteTOML writes c as a configuration file that Load reads back: every
// setting, documented by comments, with secrets redacted (the password of
// the store's URL).
func WriteTOML(w io.Writer, c Config) error {
	var b strings.Builder
	table := ""
	for _, s := range Settings(c) {
		if s.Table != table {
			table = s.Table
			b.WriteString("\n")
			for _, l := range strings.Split(wrap(keyDocs[table], 76), "\n") {
				b.WriteString("# " + l + "\n")
			}
			fmt.Fprintf(&b, "[%s]\n", table)
		}
		for _, l := range strings.Split(wrap(s.Doc, 76), "\n") {
			b.WriteString("# " + l + "\n")
		}
		fmt.Fprintf(&b, "%s = %s\n", s.Name, redact(s))
	}
	_, err := io.WriteString(w, strings.TrimPrefix(b.String(), "\n"))
	return err
}

// wrap breaks text into lines of at most width characters.
func wrap(text string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}

// Markdown writes the reference of the configuration file: every key with
// its default and documentation, then a file holding every default.
func Markdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from internal/config by "go test ./internal/config -update"; do not edit. -->

` + "`entente serve --config FILE`" + ` reads a TOML file. Every key is optional: a key left out keeps
its default, and the flags of ` + "`entente serve`" + ` (` + "`--listen`, `--data`, `--store`, `--tls-cert`, `--tls-key`,\n`--client-ca`, `--log-level`, `--log-format`" + `) override the file. ` + "`${NAME}`" + ` in the file is replaced by
the environment variable NAME (an unset one is an error), so secrets need not be written in it.
An unknown key is an error. ` + "`entente serve --config FILE --print-config`" + ` prints the configuration
in effect, flags applied, as TOML, with secrets redacted, and exits.

| key | default | meaning |
|---|---|---|
`)
	for _, s := range Settings(Default()) {
		def := s.Value
		if def == `""` {
			def = "empty"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Key, def, strings.ReplaceAll(s.Doc, "|", `\|`))
	}
	b.WriteString("\nA file with every default, ready to edit (what `entente serve --print-config` prints on a\nnew node):\n\n```toml\n")
	if err := WriteTOML(&b, Default()); err != nil {
		return err
	}
	b.WriteString("```\n")
	_, err := io.WriteString(w, b.String())
	return err
}
