-- Full-text search (store.SearchStore). One row per latest object
-- version, keyed by its objects.seq: what results show and filter on, and
-- doc, the tsvector of its words (names weighted A, descriptions and
-- labels B). The store writes a row in the transaction that stores the
-- version and deletes it in the one that supersedes or deletes it; the Go
-- step of this migration (backfillSearch) builds the rows of the objects
-- already stored, in this migration's transaction, so the first query
-- after a start needs no index build.
CREATE TABLE search_docs (
	seq        bigint PRIMARY KEY REFERENCES objects (seq) ON DELETE CASCADE,
	collection bigint NOT NULL,
	id         text NOT NULL,
	type       text NOT NULL,
	modified   bigint NOT NULL,
	tlp        text NOT NULL,
	source     text NOT NULL,
	title      text NOT NULL,
	keys       text[] NOT NULL,       -- store.SearchDoc's Keys, one each
	doc        tsvector NOT NULL
);
CREATE INDEX search_docs_doc ON search_docs USING gin (doc);
-- A search whose whole text is an object's name or value finds it here.
CREATE INDEX search_docs_keys ON search_docs USING gin (keys);
-- The browse list: newest first, per type or over every type.
CREATE INDEX search_docs_type ON search_docs (type, modified, seq);
CREATE INDEX search_docs_modified ON search_docs (modified, seq);
