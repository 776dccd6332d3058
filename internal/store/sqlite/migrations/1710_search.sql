-- Full-text search (store.SearchStore). One row per latest object
-- version: search_docs holds what results show and filter on, keyed by the
-- version's objects.seq; search_fts (FTS5, contentless) indexes its words,
-- with the same rowid. Triggers keep both in the transaction that writes
-- the objects, whichever statement does it (AddObjects' inserts and
-- is_latest updates, DeleteObjects), and this migration builds them for
-- the objects already stored, so the first query after a start needs no
-- index build. entente_search(raw, field) is the store's Go extraction
-- (store.SearchDocOf), registered with the driver.
CREATE TABLE search_docs (
	seq        INTEGER PRIMARY KEY,   -- objects.seq of the latest version
	collection INTEGER NOT NULL,
	id         TEXT NOT NULL,
	type       TEXT NOT NULL,
	modified   INTEGER NOT NULL,      -- objects.version
	tlp        TEXT NOT NULL,
	source     TEXT NOT NULL,
	title      TEXT NOT NULL,
	keys       TEXT NOT NULL          -- store.SearchDoc.Keys
) STRICT;
-- The browse list: newest first, per type or over every type.
CREATE INDEX search_docs_type ON search_docs (type, modified, seq);
CREATE INDEX search_docs_modified ON search_docs (modified, seq);

-- The exact names and values of each latest version (store.SearchDoc's
-- Keys, one row each): a search whose whole text is one of them finds the
-- object by index, however many other objects merely mention the words.
CREATE TABLE search_keys (
	key TEXT NOT NULL,
	seq INTEGER NOT NULL,
	PRIMARY KEY (key, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX search_keys_seq ON search_keys (seq);

CREATE VIRTUAL TABLE search_fts USING fts5(names, body, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');

CREATE TRIGGER objects_search_insert AFTER INSERT ON objects WHEN new.is_latest = 1 BEGIN
	INSERT INTO search_docs (seq, collection, id, type, modified, tlp, source, title, keys)
		VALUES (new.seq, new.collection, new.id, new.type, new.version,
			entente_search(new.raw, 'l'), entente_search(new.raw, 's'), entente_search(new.raw, 't'), entente_search(new.raw, 'k'));
	INSERT INTO search_fts (rowid, names, body) VALUES (new.seq, entente_search(new.raw, 'n'), entente_search(new.raw, 'b'));
	INSERT INTO search_keys (key, seq) SELECT DISTINCT value, new.seq FROM json_each(entente_search(new.raw, 'K'));
END;

CREATE TRIGGER objects_search_latest AFTER UPDATE OF is_latest ON objects WHEN new.is_latest = 1 AND old.is_latest = 0 BEGIN
	INSERT INTO search_docs (seq, collection, id, type, modified, tlp, source, title, keys)
		VALUES (new.seq, new.collection, new.id, new.type, new.version,
			entente_search(new.raw, 'l'), entente_search(new.raw, 's'), entente_search(new.raw, 't'), entente_search(new.raw, 'k'));
	INSERT INTO search_fts (rowid, names, body) VALUES (new.seq, entente_search(new.raw, 'n'), entente_search(new.raw, 'b'));
	INSERT INTO search_keys (key, seq) SELECT DISTINCT value, new.seq FROM json_each(entente_search(new.raw, 'K'));
END;

CREATE TRIGGER objects_search_superseded AFTER UPDATE OF is_latest ON objects WHEN new.is_latest = 0 AND old.is_latest = 1 BEGIN
	DELETE FROM search_docs WHERE seq = old.seq;
	DELETE FROM search_fts WHERE rowid = old.seq;
	DELETE FROM search_keys WHERE seq = old.seq;
END;

CREATE TRIGGER objects_search_delete AFTER DELETE ON objects WHEN old.is_latest = 1 BEGIN
	DELETE FROM search_docs WHERE seq = old.seq;
	DELETE FROM search_fts WHERE rowid = old.seq;
	DELETE FROM search_keys WHERE seq = old.seq;
END;

INSERT INTO search_docs (seq, collection, id, type, modified, tlp, source, title, keys)
	SELECT seq, collection, id, type, version, entente_search(raw, 'l'), entente_search(raw, 's'), entente_search(raw, 't'), entente_search(raw, 'k')
	FROM objects WHERE is_latest = 1;
INSERT INTO search_fts (rowid, names, body)
	SELECT seq, entente_search(raw, 'n'), entente_search(raw, 'b') FROM objects WHERE is_latest = 1;
INSERT INTO search_keys (key, seq)
	SELECT DISTINCT j.value, o.seq FROM objects o, json_each(entente_search(o.raw, 'K')) j WHERE o.is_latest = 1;
