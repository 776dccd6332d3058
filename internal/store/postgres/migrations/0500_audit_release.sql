-- Egress is audited as one row per release (the object versions that
-- left together), the versions packed in a blob (store.PackRelease),
-- instead of one row per version; audit_objects indexes releases by
-- object: per release and bucket of object-id hashes, the sorted hashes
-- (4 bytes each) of the objects released (store.ReleaseIndex).
ALTER TABLE audit ADD COLUMN versions bytea;

CREATE TABLE audit_objects (
	bucket integer NOT NULL,
	seq    bigint NOT NULL,       -- the audit row
	hashes bytea NOT NULL,
	PRIMARY KEY (bucket, seq)
);

-- Append-only, like the log it indexes.
CREATE TRIGGER audit_objects_no_change BEFORE UPDATE OR DELETE ON audit_objects
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_objects_no_truncate BEFORE TRUNCATE ON audit_objects
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
