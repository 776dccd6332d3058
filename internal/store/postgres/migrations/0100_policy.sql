-- Sharing policy and federation: partners, agreements, peers, provenance
-- of received objects and the append-only audit log. Timestamps are int64
-- Unix nanoseconds.

CREATE TABLE parties (
	id   text PRIMARY KEY,
	body jsonb NOT NULL
);

CREATE TABLE agreements (
	partner text PRIMARY KEY,
	body    jsonb NOT NULL
);

CREATE TABLE peers (
	seq        bigserial PRIMARY KEY,
	id         text NOT NULL UNIQUE,
	body       jsonb NOT NULL,
	checkpoint text,
	last_sync  bigint NOT NULL DEFAULT 0,
	last_error text NOT NULL DEFAULT ''
);

CREATE TABLE provenance (
	collection text NOT NULL,
	object_id  text NOT NULL,
	version    bigint NOT NULL,
	origin     text NOT NULL,
	peer       text NOT NULL,
	received   bigint NOT NULL,
	PRIMARY KEY (collection, object_id, version)
);

CREATE TABLE audit (
	seq       bigserial PRIMARY KEY,
	time      bigint NOT NULL,
	actor     text NOT NULL,
	action    text NOT NULL,
	partner   text NOT NULL,
	object_id text NOT NULL,
	version   bigint NOT NULL,
	rule      text NOT NULL,
	detail    text NOT NULL
);
-- Egress appends a record per object released, on the read path: only
-- the index that forensic queries need most (by object) is kept; queries
-- by partner and time scan in seq order, which follows time.
CREATE INDEX audit_object ON audit (object_id, seq);

-- The audit log is append-only: UPDATE, DELETE and TRUNCATE are refused.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
