-- The id index leads with the id's hash, not the collection: (id_hash,
-- collection, version) instead of (collection, id_hash, version). Every
-- look-up by id names both (collection = ? AND id_hash = ?), so it seeks
-- the same way; but each new object's entry is placed by a binary search
-- of the index's pages, and with the collection first, which is the same
-- in every entry of a collection, SQLite's integer fast path for the
-- first field always tied and every comparison went through its generic
-- record comparison (sqlite3VdbeRecordCompareWithSkip): 5 % of the
-- writer's instructions for a TAXII POST of new indicators
-- (docs/performance.md, issue 18). The writer's set of a collection's id
-- hashes (idset.go) is now read by a scan of the whole index instead of
-- the collection's range: once per process and collection.
DROP INDEX objects_id_hash;
CREATE INDEX objects_id_hash ON objects (id_hash, collection, version);
