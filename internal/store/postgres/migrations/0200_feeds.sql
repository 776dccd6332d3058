-- Feeds the node polls: configuration and poll state, as JSON
-- (store.Feed), ordered by seq.

CREATE TABLE feeds (
	seq  BIGSERIAL PRIMARY KEY,
	id   TEXT NOT NULL UNIQUE,
	body JSONB NOT NULL
);
