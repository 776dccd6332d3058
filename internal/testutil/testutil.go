// Package testutil helps tests find the project's shared real data and a
// PostgreSQL server. It is imported only by tests.
package testutil

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RepoRoot returns the directory holding the module's go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testutil: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SharedData returns the path of a file or folder under the project's
// shared real data (../shared/data beside the repository, or
// $ENTENTE_SHARED_DATA). It skips the test, saying so, when the data is
// not there.
func SharedData(tb testing.TB, elem ...string) string {
	tb.Helper()
	base := os.Getenv("ENTENTE_SHARED_DATA")
	if base == "" {
		base = filepath.Join(RepoRoot(tb), "..", "shared", "data")
	}
	p := filepath.Join(append([]string{base}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared data %s is not available (%v): set ENTENTE_SHARED_DATA or check out shared/ beside the repository", p, err)
	}
	return p
}

// SharedGzip returns the decompressed content of a gzip file under the
// shared real data (see SharedData, which it skips like).
func SharedGzip(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	f, err := os.Open(SharedData(tb, elem...))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", f.Name(), err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatalf("%s: %v", f.Name(), err)
	}
	return data
}

// DefaultPostgresURL is the server the CI machine runs.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL returns the URL of a reachable PostgreSQL server for tests:
// $ENTENTE_TEST_POSTGRES, or the CI machine's default. It skips the test
// with a message saying so when none can be reached; when $CI is set it
// fails instead, because CI must run the PostgreSQL tests.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("ENTENTE_TEST_POSTGRES")
	if url == "" {
		url = DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL at %s is required in CI: %v", url, err)
		}
		tb.Skipf("SKIP: PostgreSQL tests need a server; none reachable at %s (%v). Set ENTENTE_TEST_POSTGRES.", url, err)
	}
	conn.Close(ctx)
	return url
}

var schemaN atomic.Int64

// PostgresSchemaURL creates a fresh schema on the test PostgreSQL server
// (dropped when the test ends) and returns a connection URL whose
// search_path selects it, so that tests never see each other's data. It
// skips like PostgresURL when no server can be reached.
func PostgresSchemaURL(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("entente_test_%d_%d", time.Now().UnixNano(), schemaN.Add(1))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	v := u.Query()
	v.Set("search_path", schema)
	u.RawQuery = v.Encode()
	return u.String()
}
