-- The audit log, in its own database file (audit.db) beside the objects
-- (entente.db): appends to it, on the read path of every partner, then
-- neither wait for the objects' writer nor invalidate the page caches of
-- the connections that read objects. The tables are those that the
-- object database held up to migration 0500 (moved by the store when it
-- opens: see moveLegacyAudit). Timestamps are int64 Unix nanoseconds.
CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	time      INTEGER NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	partner   TEXT NOT NULL,
	object_id TEXT NOT NULL,
	version   INTEGER NOT NULL,
	rule      TEXT NOT NULL,
	detail    TEXT NOT NULL,
	-- A release: the versions that left together, packed
	-- (store.PackRelease); NULL for a single record.
	versions  BLOB
) STRICT;
-- Queries by partner and time scan in seq order, which follows time;
-- single records are found by object through this index, releases
-- through audit_objects.
CREATE INDEX audit_object ON audit (object_id, seq);

-- The index of releases by object: per release and bucket of object-id
-- hashes, the hashes (4 bytes each) of the objects released
-- (store.ReleaseIndex).
CREATE TABLE audit_objects (
	bucket INTEGER NOT NULL,
	seq    INTEGER NOT NULL,      -- the audit row
	hashes BLOB NOT NULL,
	PRIMARY KEY (bucket, seq)
) STRICT, WITHOUT ROWID;

-- The audit log is append-only, and so is its index.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_objects_no_update BEFORE UPDATE ON audit_objects
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_objects_no_delete BEFORE DELETE ON audit_objects
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
