-- Objects are found by a 64-bit hash of their id (FNV-1a, computed by the
-- store: entente_id_hash) instead of the id text: the index entry shrinks
-- from about 65 bytes to about 25, so the random ids of an addition dirty
-- (and write to the WAL) fewer index pages and compare as integers. Every
-- query by id also names the id, which settles collisions. Uniqueness of
-- (collection, id, version) is kept by the single writer, which looks up
-- the stored versions of an addition's ids before planning it.
ALTER TABLE objects ADD COLUMN id_hash INTEGER NOT NULL DEFAULT 0;
UPDATE objects SET id_hash = entente_id_hash(id);
DROP INDEX objects_id_version;
CREATE INDEX objects_id_hash ON objects (collection, id_hash, version);
