package sqlite

import (
	"errors"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/entente-cti/entente"
)

// ErrStorageFull is the message of the error every write returns while
// the data directory's file system (or the database's page limit) is
// full. Reads go on being served.
const ErrStorageFull = "the node's storage is full: nothing can be stored until space is freed on its data directory; reads are still served"

// storageFull returns err as an EUNAVAILABLE error with a message that
// says what happened when it is SQLite's "database or disk is full"
// (SQLITE_FULL, which SQLite returns when a write fails with ENOSPC or
// the database reaches max_page_count) or ENOSPC itself, and err
// unchanged otherwise. A client told EUNAVAILABLE (503) retries later,
// which is right: the write succeeds once space returns, with nothing
// else to repair.
func storageFull(err error) error {
	if err == nil || !isFull(err) {
		return err
	}
	if e, ok := errors.AsType[*entente.Error](err); ok && e.Message == ErrStorageFull {
		return err
	}
	return &entente.Error{Code: entente.EUNAVAILABLE, Message: ErrStorageFull, Err: err}
}

// isFull reports whether err says the storage is full.
func isFull(err error) bool {
	if e, ok := errors.AsType[*sqlite.Error](err); ok && e.Code()&0xff == sqlite3.SQLITE_FULL {
		return true
	}
	return errors.Is(err, syscall.ENOSPC)
}
