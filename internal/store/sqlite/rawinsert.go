package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/entente-cti/entente/internal/store"
)

// rawInsert runs the writer's full-chunk INSERT (insertFull: insertShared
// values, then insertChunk rows of insertCols values) on the driver's connection itself, inside
// the writer's transaction, with arguments it reuses from one chunk to
// the next. Through database/sql, every execution converted its 1,200
// arguments into a new slice of driver values (48 KiB, zeroed: the
// largest allocation of a TAXII POST, 18 % of the serve process's bytes
// allocated, and fresh pages to fault in while the heap grows). It is
// used by the writer goroutine alone, then by Close.
type rawInsert struct {
	// dc is the driver connection st was prepared on: database/sql may
	// replace the writer's connection after an error, and st is then
	// prepared again on the new one.
	dc   any
	st   driver.Stmt
	args []driver.NamedValue
}

// exec inserts entries, insertChunk of them, numbered from seq+1, through
// conn, the connection of the writer's transaction.
func (ri *rawInsert) exec(ctx context.Context, conn *sql.Conn, coll, dateAdded, seq int64, entries []store.NewEntry) error {
	if len(entries) != insertChunk {
		return fmt.Errorf("raw insert of %d entries, not %d", len(entries), insertChunk)
	}
	if ri.args == nil {
		ri.args = make([]driver.NamedValue, insertShared+insertChunk*insertCols)
		for i := range ri.args {
			ri.args[i].Ordinal = i + 1
		}
	}
	a := ri.args
	// As insertArgs, without a slice of values to copy.
	a[0].Value, a[1].Value, a[2].Value = coll, dateAdded, seq+1
	for i, e := range entries {
		o := e.Obj
		v := a[insertShared+i*insertCols : insertShared+(i+1)*insertCols : insertShared+(i+1)*insertCols]
		v[0].Value, v[1].Value, v[2].Value, v[3].Value = o.ID, idHash(o.ID), o.Type, o.SpecVersion
		v[4].Value, v[5].Value, v[6].Value, v[7].Value = e.Version, e.Latest, e.First, []byte(o.Raw)
	}
	err := conn.Raw(func(dc any) error {
		if ri.dc != dc {
			// A statement of a connection database/sql closed is left
			// alone: finalizing it could touch what the close freed.
			ri.dc, ri.st = nil, nil
			p, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("the driver cannot prepare statements with a context")
			}
			st, err := p.PrepareContext(ctx, insertFull)
			if err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			ri.dc, ri.st = dc, st
		}
		ex, ok := ri.st.(driver.StmtExecContext)
		if !ok {
			return errors.New("the driver cannot execute statements with a context")
		}
		_, err := ex.ExecContext(ctx, a)
		return err
	})
	// What the arguments point at (the objects' JSON) is not kept.
	for i := range a {
		a[i].Value = nil
	}
	return err
}

// close finalizes the statement, on db's connection if it is still the
// one it was prepared on.
func (ri *rawInsert) close(db *sql.DB) error {
	if ri.st == nil {
		return nil
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("close the raw insert: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if dc != ri.dc {
			return nil
		}
		ri.dc = nil
		if err := ri.st.Close(); err != nil {
			return fmt.Errorf("close the raw insert: %w", err)
		}
		return nil
	})
}
