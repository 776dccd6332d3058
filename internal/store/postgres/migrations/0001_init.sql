-- Initial schema. Every timestamp is bigint Unix nanoseconds (timestamptz
-- keeps only microseconds; STIX versions must compare exactly).

CREATE TABLE collections (
	seq             bigserial PRIMARY KEY,
	id              text NOT NULL UNIQUE,
	alias           text UNIQUE,            -- NULL when the collection has none
	title           text NOT NULL,
	description     text NOT NULL,
	default_marking text NOT NULL,
	read_roles      text[] NOT NULL,
	write_roles     text[] NOT NULL,
	created         bigint NOT NULL,
	-- last_added is the greatest date_added ever given in the collection;
	-- it never decreases, even when entries are deleted. Writers lock the
	-- collection's row (SELECT ... FOR UPDATE) to add, which serialises
	-- them per collection.
	last_added      bigint NOT NULL DEFAULT 0
);

-- Insertion sequence numbers, taken while the collection's row is locked,
-- so that within a collection commit order is (date_added, seq) order.
CREATE SEQUENCE objects_seq;

CREATE TABLE objects (
	seq          bigint PRIMARY KEY,
	collection   bigint NOT NULL REFERENCES collections (seq),
	id           text NOT NULL,
	type         text NOT NULL,
	spec_version text NOT NULL,
	version      bigint NOT NULL,
	date_added   bigint NOT NULL,
	is_latest    boolean NOT NULL,
	is_first     boolean NOT NULL,
	raw          bytea NOT NULL
);

-- Versions of one object; also enforces (id, version) uniqueness.
CREATE UNIQUE INDEX objects_id_version ON objects (collection, id, version);
-- TAXII date_added order, for every version filter.
CREATE INDEX objects_order ON objects (collection, date_added, seq);
-- The default filter (latest version) walks only latest entries.
CREATE INDEX objects_latest ON objects (collection, date_added, seq) WHERE is_latest;

CREATE TABLE statuses (
	id      text PRIMARY KEY,
	body    bytea NOT NULL,
	updated bigint NOT NULL
);

CREATE TABLE keys (
	seq     bigserial PRIMARY KEY,
	id      text NOT NULL UNIQUE,
	hash    bytea NOT NULL UNIQUE,
	name    text NOT NULL,
	org     text NOT NULL,
	role    text NOT NULL,
	created bigint NOT NULL,
	revoked bigint                      -- NULL while the key is valid
);

CREATE TABLE settings (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);
