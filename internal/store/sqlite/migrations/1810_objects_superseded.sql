-- objects_order (collection, date_added, pos), every version, becomes
-- objects_superseded, the versions that are not the latest: the latest
-- ones are already in objects_latest, and a new object's entry was written
-- to both, the same key twice (8 % of the writer's instructions for a
-- TAXII POST of new indicators, and a sixteenth of the log it writes;
-- docs/performance.md, issue 18). A page of every version (or of the
-- first ones, or of some) walks both partial indexes, merged in
-- (date_added, pos) order by SQLite (MERGE (UNION ALL), see pageQuery),
-- so it still costs what it returns; a latest-only page walks
-- objects_latest as before.
DROP INDEX objects_order;
CREATE INDEX objects_superseded ON objects (collection, date_added, pos) WHERE is_latest = 0;
