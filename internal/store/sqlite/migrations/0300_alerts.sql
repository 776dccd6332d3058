-- Node-local lifecycle of coordinated alerts: status and history of
-- transitions (JSON). updated is int64 Unix nanoseconds.

CREATE TABLE alert_states (
	id      TEXT PRIMARY KEY,
	status  TEXT NOT NULL,
	updated INTEGER NOT NULL,
	body    TEXT NOT NULL
);

CREATE INDEX alert_states_updated ON alert_states (updated DESC, id);
