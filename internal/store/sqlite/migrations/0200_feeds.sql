-- Feeds the node polls: configuration and poll state, as JSON
-- (store.Feed), ordered by seq.

CREATE TABLE feeds (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	id   TEXT NOT NULL UNIQUE,
	body TEXT NOT NULL
) STRICT;
