-- Sharing policy and federation: partners, agreements, peers, provenance
-- of received objects and the append-only audit log. Timestamps are int64
-- Unix nanoseconds.

CREATE TABLE parties (
	id   TEXT PRIMARY KEY,
	body TEXT NOT NULL            -- policy.Party as JSON
) STRICT;

CREATE TABLE agreements (
	partner TEXT PRIMARY KEY,
	body    TEXT NOT NULL         -- policy.Agreement as JSON
) STRICT;

CREATE TABLE peers (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	body       TEXT NOT NULL,     -- configuration (store.Peer) as JSON
	checkpoint TEXT,
	last_sync  INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE provenance (
	collection TEXT NOT NULL,
	object_id  TEXT NOT NULL,
	version    INTEGER NOT NULL,
	origin     TEXT NOT NULL,
	peer       TEXT NOT NULL,
	received   INTEGER NOT NULL,
	PRIMARY KEY (collection, object_id, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	time      INTEGER NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	partner   TEXT NOT NULL,
	object_id TEXT NOT NULL,
	version   INTEGER NOT NULL,
	rule      TEXT NOT NULL,
	detail    TEXT NOT NULL
) STRICT;
-- Egress appends a record per object released, on the read path: only
-- the index that forensic queries need most (by object) is kept; queries
-- by partner and time scan in seq order, which follows time.
CREATE INDEX audit_object ON audit (object_id, seq);

-- The audit log is append-only.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
