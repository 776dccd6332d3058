-- Node-local lifecycle of coordinated alerts: status and history of
-- transitions (JSON). updated is int64 Unix nanoseconds.

CREATE TABLE alert_states (
	id      text PRIMARY KEY,
	status  text NOT NULL,
	updated bigint NOT NULL,
	body    jsonb NOT NULL
);

CREATE INDEX alert_states_updated ON alert_states (updated DESC, id);
