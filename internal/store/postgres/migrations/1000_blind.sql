-- Blind access (internal/blind): each partner's evaluations per budget
-- period, and the digests of the batches evaluated per epoch (the replay
-- guard), shared by every replica. Only the current and previous period
-- and epoch of each partner are kept.
CREATE TABLE blind_budget (
	partner text NOT NULL,
	period  timestamptz NOT NULL,
	used    bigint NOT NULL,
	PRIMARY KEY (partner, period)
);

CREATE TABLE blind_batches (
	partner text NOT NULL,
	epoch   bigint NOT NULL,
	digest  bytea NOT NULL,
	PRIMARY KEY (partner, epoch, digest)
);
