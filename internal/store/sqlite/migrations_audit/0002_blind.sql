-- Blind access (internal/blind): each partner's evaluations per budget
-- period, and the digests of the batches evaluated per epoch (the replay
-- guard). They live in the audit database because they are written on
-- the same path as the audit of every evaluation batch, by partners'
-- requests, and so neither wait for the objects' writer nor invalidate
-- the page caches of the connections that read objects. Periods are
-- Unix nanoseconds; only the current and previous period and epoch of
-- each partner are kept.
CREATE TABLE blind_budget (
	partner TEXT NOT NULL,
	period  INTEGER NOT NULL,
	used    INTEGER NOT NULL,
	PRIMARY KEY (partner, period)
) STRICT, WITHOUT ROWID;

CREATE TABLE blind_batches (
	partner TEXT NOT NULL,
	epoch   INTEGER NOT NULL,
	digest  BLOB NOT NULL,
	PRIMARY KEY (partner, epoch, digest)
) STRICT, WITHOUT ROWID;
