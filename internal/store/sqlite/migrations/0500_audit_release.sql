-- Egress is audited as one row per release (the object versions that
-- left together), the versions packed in a blob (store.PackRelease),
-- instead of one row per version; audit_objects indexes releases by
-- object: per release and bucket of object-id hashes, the sorted hashes
-- (4 bytes each) of the objects released (store.ReleaseIndex).
ALTER TABLE audit ADD COLUMN versions BLOB;

CREATE TABLE audit_objects (
	bucket INTEGER NOT NULL,
	seq    INTEGER NOT NULL,      -- the audit row
	hashes BLOB NOT NULL,
	PRIMARY KEY (bucket, seq)
) STRICT, WITHOUT ROWID;

-- Append-only, like the log it indexes.
CREATE TRIGGER audit_objects_no_update BEFORE UPDATE ON audit_objects
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_objects_no_delete BEFORE DELETE ON audit_objects
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
