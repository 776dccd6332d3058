-- The search index of new objects is kept up to date by the store's
-- writer when it has nothing else to do (and at once before a search),
-- not by a trigger on every insert: the trigger doubled the CPU of a
-- TAXII POST (docs/performance.md, issue 17). search_state holds the
-- greatest objects.seq whose insertion the index reflects; the triggers
-- that follow versions (a version superseded, one made latest again by a
-- deletion, a deletion) stay, and the writer skips what they indexed.
DROP TRIGGER objects_search_insert;
CREATE TABLE search_state (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
) STRICT;
INSERT INTO search_state (id, seq) SELECT 1, coalesce(max(seq), 0) FROM objects;
