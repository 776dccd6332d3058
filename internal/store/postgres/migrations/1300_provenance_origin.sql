-- Quarantining a partner retracts what the node passed on of it: the
-- versions received from one origin are found by this index.
CREATE INDEX provenance_origin ON provenance (origin, received);
