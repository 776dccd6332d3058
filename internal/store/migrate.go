package store

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Migration is one schema migration: a SQL file embedded in a backend's
// binary, applied once, in name order.
type Migration struct {
	Name string
	SQL  string
}

// Migrations returns the *.sql files of directory dir in fsys, sorted by
// name (name them 0001_xxx.sql, 0002_yyy.sql, ...).
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Name: e.Name(), SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return strings.Compare(a.Name, b.Name) })
	return ms, nil
}
