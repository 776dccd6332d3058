-- Initial schema. Every timestamp is int64 Unix nanoseconds.

CREATE TABLE collections (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL UNIQUE,
	alias           TEXT UNIQUE,           -- NULL when the collection has none
	title           TEXT NOT NULL,
	description     TEXT NOT NULL,
	default_marking TEXT NOT NULL,
	read_roles      TEXT NOT NULL,         -- JSON array of roles
	write_roles     TEXT NOT NULL,
	created         INTEGER NOT NULL,
	-- last_added is the greatest date_added ever given in the collection;
	-- it never decreases, even when entries are deleted.
	last_added      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per stored version of an object in a collection. seq is the
-- insertion sequence, assigned by the (single) writer in increasing
-- order. pos holds the same value as an ordinary column: SQLite does not
-- seek an index with a row-value range, (date_added, pos) > (?, ?), when
-- the second column is the rowid, and that seek is what makes a page cost
-- the same wherever it starts.
CREATE TABLE objects (
	seq          INTEGER PRIMARY KEY,
	collection   INTEGER NOT NULL REFERENCES collections (seq),
	id           TEXT NOT NULL,
	type         TEXT NOT NULL,
	spec_version TEXT NOT NULL,
	version      INTEGER NOT NULL,
	date_added   INTEGER NOT NULL,
	pos          INTEGER NOT NULL,
	is_latest    INTEGER NOT NULL,
	is_first     INTEGER NOT NULL,
	raw          BLOB NOT NULL
) STRICT;

-- Versions of one object; also enforces (id, version) uniqueness.
CREATE UNIQUE INDEX objects_id_version ON objects (collection, id, version);
-- TAXII date_added order, for every version filter.
CREATE INDEX objects_order ON objects (collection, date_added, pos);
-- The default filter (latest version) walks only latest entries.
CREATE INDEX objects_latest ON objects (collection, date_added, pos) WHERE is_latest = 1;

CREATE TABLE statuses (
	id      TEXT PRIMARY KEY,
	body    BLOB NOT NULL,
	updated INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	id      TEXT NOT NULL UNIQUE,
	hash    BLOB NOT NULL UNIQUE,
	name    TEXT NOT NULL,
	org     TEXT NOT NULL,
	role    TEXT NOT NULL,
	created INTEGER NOT NULL,
	revoked INTEGER                      -- NULL while the key is valid
) STRICT;

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
